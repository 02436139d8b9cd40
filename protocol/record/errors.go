package record

import "errors"

// The sentinels name what is wrong and what to do. Decode, Verify and
// CheckClock wrap them with detail; test with errors.Is and use Reason for a
// stable code in logs and metrics.
var (
	ErrTooLarge       = errors.New("the record is larger than the 64 KiB limit; make its content smaller")
	ErrMalformed      = errors.New("the record is malformed; it was not produced by a compatible Agora node")
	ErrNotCanonical   = errors.New("the record is not canonically encoded; it was not produced by a compatible Agora node")
	ErrUnknownVersion = errors.New("the record uses a format version this node does not know; upgrade Agora to read it")
	ErrUnknownKind    = errors.New("the record has a kind this node does not know; upgrade Agora to read it")
	ErrBadAuthor      = errors.New("the record's author is not a valid Ed25519 peer ID; records must be signed with an Agora node's Ed25519 identity key")
	ErrBadSignature   = errors.New("the record's signature does not match its content and author; it was forged or changed after signing")
	ErrFromFuture     = errors.New("the record was created in the future; check that this computer's clock is set correctly (the author's may be wrong)")
	ErrBadCommunity   = errors.New("the record names an invalid community; a community ID is a CIDv1 dag-cbor sha2-256 (bafyrei...) and only a community genesis has none")
)

var reasons = []struct {
	err  error
	code string
}{
	{ErrTooLarge, "too-large"},
	{ErrMalformed, "malformed"},
	{ErrNotCanonical, "not-canonical"},
	{ErrUnknownVersion, "unknown-version"},
	{ErrUnknownKind, "unknown-kind"},
	{ErrBadAuthor, "bad-author"},
	{ErrBadSignature, "bad-signature"},
	{ErrFromFuture, "from-future"},
	{ErrBadCommunity, "bad-community"},
}

// Reason returns a short, stable code for err, for metric labels and logs:
// "too-large", "malformed", "not-canonical", "unknown-version",
// "unknown-kind", "bad-author", "bad-signature", "from-future",
// "bad-community"; "" for nil and "other" for anything else. Codes are
// append-only.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "other"
}

// IsSenderFault reports whether err proves that whoever produced the record
// is at fault, as opposed to a record that a newer or better-synchronised
// node might rightly accept (unknown version or kind, clock skew). Gossip
// validators use it to choose between Reject (penalise the sender) and
// Ignore.
func IsSenderFault(err error) bool {
	for _, e := range []error{ErrTooLarge, ErrMalformed, ErrNotCanonical, ErrBadAuthor, ErrBadSignature, ErrBadCommunity} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
