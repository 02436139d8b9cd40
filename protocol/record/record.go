package record

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

const (
	// Version is the envelope format this package reads and writes.
	Version = 1
	// MaxSize bounds an encoded record, checked before any parsing.
	MaxSize = 64 << 10
	// MaxClockSkew is how far in the future of the receiver's clock a
	// record's creation time may be.
	MaxClockSkew = 5 * time.Minute
	// SigPrefix separates record signatures from anything else the same key
	// signs (libp2p handshakes, receipts, other protocols).
	SigPrefix = "agora/record/v1\x00"
	// SigSize is the length of an Ed25519 signature.
	SigSize = 64
)

// Record is a signed, content-addressed fact authored by one peer.
//
// A Record returned by Sign or Decode must not be modified: it caches its
// encoding and CID, and both would silently go stale. A Record is safe for
// concurrent reads.
type Record struct {
	V         uint64
	Kind      Kind
	Community cid.Cid // cid.Undef only for a community genesis
	Author    peer.ID
	Created   int64 // unix milliseconds
	Body      canon.RawMessage
	Sig       []byte

	raw []byte  // canonical encoding, set by Sign and Decode
	id  cid.Cid // CID of raw
}

// wireRecord is the envelope as it appears on the wire. The genesis of a
// community has no "community" key at all (omitempty), and the signing input
// is this map without "sig".
type wireRecord struct {
	V         uint64           `cbor:"v"`
	Kind      string           `cbor:"kind"`
	Community []byte           `cbor:"community,omitempty"`
	Author    []byte           `cbor:"author"`
	Created   int64            `cbor:"created"`
	Body      canon.RawMessage `cbor:"body"`
	Sig       []byte           `cbor:"sig,omitempty"`
}

func (r *Record) toWire() wireRecord {
	w := wireRecord{
		V:       r.V,
		Kind:    string(r.Kind),
		Author:  []byte(r.Author),
		Created: r.Created,
		Body:    r.Body,
		Sig:     r.Sig,
	}
	if r.Community.Defined() {
		w.Community = r.Community.Bytes()
	}
	return w
}

// cborMajorMap is the CBOR major type of a map. Bodies are maps with named
// fields so that a kind's schema can gain fields and still read old records.
const cborMajorMap = 5

var cidPrefix = cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}

func sum(b []byte) cid.Cid {
	c, err := cidPrefix.Sum(b)
	if err != nil { // only for an unknown hash function, which sha2-256 is not
		return cid.Undef
	}
	return c
}

// Sign builds and signs a record of the given kind with an Ed25519 key.
// community is cid.Undef only for KindCommunity. body must encode (with
// canon) to a CBOR map. The result is exactly what Decode accepts: Sign runs
// the same checks on its own output.
func Sign(key crypto.PrivKey, kind Kind, community cid.Cid, body any, created time.Time) (*Record, error) {
	if key == nil || key.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%w: sign: only Ed25519 keys can sign records", ErrBadAuthor)
	}
	author, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: sign: %w", ErrBadAuthor, err)
	}
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: sign: kind %q", ErrUnknownKind, clip(string(kind)))
	}
	if err := checkCommunityFor(kind, community); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	b, err := canon.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: sign %s body: %w", ErrMalformed, kind, err)
	}
	r := &Record{
		V:         Version,
		Kind:      kind,
		Community: community,
		Author:    author,
		Created:   created.UnixMilli(),
		Body:      b,
	}
	msg, err := r.signingInput()
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if r.Sig, err = SignBytes(key, msg); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	raw, err := canon.Marshal(r.toWire())
	if err != nil {
		return nil, fmt.Errorf("%w: sign: %w", ErrMalformed, err)
	}
	out, err := Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return out, nil
}

// signingInput is SigPrefix followed by the canonical envelope without sig.
func (r *Record) signingInput() ([]byte, error) {
	w := r.toWire()
	w.Sig = nil
	b, err := canon.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: encode envelope: %w", ErrMalformed, err)
	}
	return append([]byte(SigPrefix), b...), nil
}

// Raw returns the record's canonical encoding without copying it, for
// callers that only read it (store it, send it). It is nil for a Record not
// made by Sign or Decode; use Encode then. The caller must not modify it.
func (r *Record) Raw() []byte {
	return r.raw
}

// Encode returns the record's canonical encoding.
func (r *Record) Encode() ([]byte, error) {
	if r.raw != nil {
		return bytes.Clone(r.raw), nil
	}
	b, err := canon.Marshal(r.toWire())
	if err != nil {
		return nil, fmt.Errorf("%w: encode record: %w", ErrMalformed, err)
	}
	return b, nil
}

// CID returns the record's content ID: CIDv1, dag-cbor, sha2-256 of the
// encoding. It is cid.Undef if the record cannot be encoded.
func (r *Record) CID() cid.Cid {
	if r.raw != nil {
		return r.id
	}
	b, err := r.Encode()
	if err != nil {
		return cid.Undef
	}
	return sum(b)
}

// Decode parses an encoded record and checks everything but the signature
// and the clock, so a caller can drop a duplicate by CID before paying for
// signature verification. Most callers want Open.
//
// Checks run in this order, and the first failure is returned: size,
// canonical CBOR and envelope fields, version, re-encoding identity, kind,
// author, community, created, body, signature length.
func Decode(b []byte) (*Record, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	var w wireRecord
	if err := canon.Unmarshal(b, &w); err != nil {
		// A newer envelope version may have other fields; say so rather
		// than calling it malformed, so newer senders are not punished.
		if v, ok := peekVersion(b); ok && v != Version {
			return nil, fmt.Errorf("%w: version %d", ErrUnknownVersion, v)
		}
		return nil, encodingError(err)
	}
	if w.V != Version {
		return nil, fmt.Errorf("%w: version %d", ErrUnknownVersion, w.V)
	}
	re, err := canon.Marshal(w)
	if err != nil {
		return nil, encodingError(err)
	}
	if !bytes.Equal(re, b) {
		// Canonical CBOR, but not the one encoding of this envelope: a
		// required key is missing, or an optional one is present but empty.
		return nil, fmt.Errorf("%w: envelope does not re-encode to the same bytes", ErrNotCanonical)
	}
	kind := Kind(w.Kind)
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: kind %q", ErrUnknownKind, clip(w.Kind))
	}
	author := peer.ID(w.Author)
	if _, err := AuthorKey(author); err != nil {
		return nil, err
	}
	community := cid.Undef
	if len(w.Community) > 0 {
		c, err := cid.Cast(w.Community)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCommunity, err)
		}
		if !bytes.Equal(c.Bytes(), w.Community) {
			return nil, fmt.Errorf("%w: community ID is not in canonical binary form", ErrBadCommunity)
		}
		community = c
	}
	if err := checkCommunityFor(kind, community); err != nil {
		return nil, err
	}
	if w.Created <= 0 {
		return nil, fmt.Errorf("%w: created time %d is not after 1970", ErrMalformed, w.Created)
	}
	if len(w.Body) == 0 || w.Body[0]>>5 != cborMajorMap {
		return nil, fmt.Errorf("%w: body must be a CBOR map", ErrMalformed)
	}
	if len(w.Sig) != SigSize {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(w.Sig), SigSize)
	}
	raw := bytes.Clone(b)
	return &Record{
		V:         w.V,
		Kind:      kind,
		Community: community,
		Author:    author,
		Created:   w.Created,
		Body:      w.Body,
		Sig:       w.Sig,
		raw:       raw,
		id:        sum(raw),
	}, nil
}

// peekVersion reads "v" from a canonical map whose other keys may be unknown.
func peekVersion(b []byte) (uint64, bool) {
	var m map[string]canon.RawMessage
	if canon.Unmarshal(b, &m) != nil {
		return 0, false
	}
	var v uint64
	if canon.Unmarshal(m["v"], &v) != nil {
		return 0, false
	}
	return v, true
}

func encodingError(err error) error {
	if errors.Is(err, canon.ErrNotCanonical) {
		return fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}

// sigEntryHead is the start of the "sig" entry of an envelope: the text key
// "sig" and the header of a 64-byte byte string.
var sigEntryHead = []byte{0x63, 's', 'i', 'g', 0x58, SigSize}

// vEntry is the "v" entry of an envelope of this Version.
var vEntry = []byte{0x61, 'v', Version}

// cutSig returns the signing input of the canonical envelope raw, as
// Decode accepted it, without encoding it again: SigPrefix, then raw without
// its "sig" entry and with one entry fewer in the map header. In canonical
// (length-first) key order "sig" comes right after "v", the only shorter
// key, so the entry is found without parsing. ok is false if raw is not laid
// out so (say, a Record not made by Decode or Sign); the caller then encodes
// the input afresh.
func cutSig(raw, sig []byte) (msg []byte, ok bool) {
	const at = 1 + 3 // map header, "v" entry
	end := at + len(sigEntryHead) + SigSize
	if len(raw) < end || raw[0] < 0xa2 || raw[0] > 0xb7 || !bytes.Equal(raw[1:at], vEntry) ||
		!bytes.Equal(raw[at:at+len(sigEntryHead)], sigEntryHead) || !bytes.Equal(raw[at+len(sigEntryHead):end], sig) {
		return nil, false
	}
	msg = make([]byte, 0, len(SigPrefix)+len(raw)-(end-at))
	msg = append(msg, SigPrefix...)
	msg = append(msg, raw[0]-1) // a map of 2 to 23 entries: the count is in the header byte
	msg = append(msg, raw[1:at]...)
	return append(msg, raw[end:]...), true
}

// CheckClock rejects a record created more than MaxClockSkew after now, or
// with no creation time.
func (r *Record) CheckClock(now time.Time) error {
	if r.Created <= 0 {
		return fmt.Errorf("%w: created time %d is not after 1970", ErrMalformed, r.Created)
	}
	if r.Created > now.Add(MaxClockSkew).UnixMilli() {
		return fmt.Errorf("%w: created at %s, more than %s after this computer's time %s",
			ErrFromFuture, r.CreatedTime().UTC().Format(time.RFC3339), MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Open is how records from the network are read: Decode, then Verify, then
// CheckClock against the receiver's clock.
func Open(b []byte, now time.Time) (*Record, error) {
	r, err := Decode(b)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	if err := r.CheckClock(now); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeBody decodes the body into v with the same strictness as the
// envelope: unknown fields and non-canonical data are errors.
func (r *Record) DecodeBody(v any) error {
	if err := canon.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrMalformed, clip(string(r.Kind)), err)
	}
	return nil
}

// CreatedTime returns Created as a time.Time.
func (r *Record) CreatedTime() time.Time {
	return time.UnixMilli(r.Created)
}

// ed25519IDPrefix is the start of every Ed25519 peer ID: an identity
// multihash (0x00) of 36 bytes (0x24) holding the protobuf PublicKey
// {Type: Ed25519 (0x08 0x01), Data: 32 bytes (0x12 0x20)}.
var ed25519IDPrefix = []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}

// AuthorKey returns the Ed25519 public key inlined in id. It accepts only the
// one encoding libp2p produces for an Ed25519 key, so a key has exactly one
// author ID and no signer can appear under two names.
func AuthorKey(id peer.ID) (crypto.PubKey, error) {
	raw, err := inlineKey(id)
	if err != nil {
		return nil, err
	}
	pk, err := crypto.UnmarshalEd25519PublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAuthor, err)
	}
	return pk, nil
}

// inlineKey returns the 32 bytes of Ed25519 key inlined in id, with the
// checks of AuthorKey, without making a crypto.PubKey: the signature checks
// need only the bytes.
func inlineKey(id peer.ID) ([]byte, error) {
	if len(id) != len(ed25519IDPrefix)+32 || !bytes.HasPrefix([]byte(id), ed25519IDPrefix) {
		return nil, fmt.Errorf("%w: %d-byte ID does not inline an Ed25519 key", ErrBadAuthor, len(id))
	}
	return []byte(id[len(ed25519IDPrefix):]), nil
}

// CheckCommunityID reports whether c has the shape of a community ID: the
// CID of a record, CIDv1 dag-cbor sha2-256.
func CheckCommunityID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: no community ID", ErrBadCommunity)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("%w: %s is not a CIDv1 dag-cbor sha2-256", ErrBadCommunity, clip(c.String()))
	}
	return nil
}

func checkCommunityFor(kind Kind, c cid.Cid) error {
	if !c.Defined() {
		if kind != KindCommunity {
			return fmt.Errorf("%w: a %s record must name its community", ErrBadCommunity, kind)
		}
		return nil
	}
	return CheckCommunityID(c)
}

// clip keeps hostile strings from bloating error messages and logs.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
