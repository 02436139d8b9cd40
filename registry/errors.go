package registry

import (
	"context"
	"errors"

	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/record"
)

// Sentinel errors of the registry. Ingest may also return the sentinels of
// protocol/record and protocol/body; Reason, IsSenderFault and IsRetryable
// classify all of them.
var (
	ErrNotFound         = errors.New("the registry has no record with this ID; it may not have arrived yet")
	ErrNotMember        = errors.New("this node is not a member of the record's community, so it does not keep its records; join the community first")
	ErrUnknownReference = errors.New("the record refers to a record this node does not have yet; it will be accepted once that record arrives")
	ErrNotAuthor        = errors.New("a record can only be revoked by its own author")
	ErrBadReference     = errors.New("the record refers to a record it cannot apply to")
	ErrRateLimited      = errors.New("the record's author is publishing faster than this node accepts; sync will fetch the record again later")
	ErrClosed           = errors.New("the registry is shut down; restart the node to store records")
	ErrStorage          = errors.New("the registry could not read or write its datastore; check free disk space and the node's log")
	ErrEphemeral        = errors.New("adverts are ephemeral: they travel on a community's adverts topic and are never stored in the registry")
)

var reasons = []struct {
	err  error
	code string
}{
	{ErrNotFound, "not-found"},
	{ErrNotMember, "not-member"},
	{ErrUnknownReference, "unknown-reference"},
	{ErrNotAuthor, "not-author"},
	{ErrBadReference, "bad-reference"},
	{ErrRateLimited, "rate-limited"},
	{ErrClosed, "closed"},
	{ErrStorage, "storage"},
	{ErrEphemeral, "ephemeral-kind"},
	{body.ErrInvalid, "invalid-body"}, // before record's: it also matches record.ErrMalformed
	{body.ErrUnknownField, "unknown-field"},
	{body.ErrNotSupported, "unsupported-kind"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "canceled"},
}

// Reason returns a short, stable code for err, for metric labels and logs:
// the registry's own codes ("not-member", "unknown-reference", "not-author",
// "bad-reference", "rate-limited", "closed", "storage", "not-found",
// "ephemeral-kind",
// "canceled"), the body's ("invalid-body", "unknown-field",
// "unsupported-kind"), and otherwise record.Reason's. "" for nil. Codes are
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
	return record.Reason(err)
}

// IsSenderFault reports whether err proves that whoever produced the record
// is at fault: the record can never be valid on any node. Gossip validators
// answer Reject for these and Ignore for everything else, including
// duplicates (Result.New false, no error), unknown references, rate limits,
// records of other communities and kinds this node cannot read yet.
func IsSenderFault(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{ErrNotAuthor, ErrBadReference, ErrEphemeral, body.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return record.IsSenderFault(err)
}

// IsRetryable reports whether the same record may be accepted if offered
// again later: its reference may arrive, its author's rate may recover, the
// datastore may recover, or the caller gave up waiting. Sync should fetch
// such records again in a later round.
func IsRetryable(err error) bool {
	for _, e := range []error{ErrUnknownReference, ErrRateLimited, ErrStorage, ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
