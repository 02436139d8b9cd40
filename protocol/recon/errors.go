package recon

import "errors"

// Every error this package returns for bad input matches one of these; test
// with errors.Is.
var (
	// ErrBadFrame reports a frame that breaks the protocol: not canonical
	// CBOR, a missing or extra field, a value of the wrong shape, ranges out
	// of order, a limit exceeded. A compatible peer never sends one, so it
	// is the sender's fault.
	ErrBadFrame = errors.New("the peer sent a sync frame that breaks the protocol; it is misbehaving or is not a compatible Agora node")
	// ErrFrameTooLarge reports a length prefix above the limit; nothing was
	// allocated for it. It matches ErrBadFrame too.
	ErrFrameTooLarge error = tooLargeError{}
	// ErrUnknownType reports a frame type this version does not know. It is
	// not necessarily the sender's fault: a newer node may send it.
	ErrUnknownType = errors.New("the peer sent a sync frame of a type this node does not know; upgrade Agora if the peer is newer")
)

type tooLargeError struct{}

func (tooLargeError) Error() string {
	return "the peer sent a sync frame larger than the protocol allows; it is misbehaving or is not a compatible Agora node"
}

func (tooLargeError) Is(target error) bool { return target == ErrBadFrame }

// Error codes of an Error frame. The list is append-only; a receiver must
// accept codes it does not know.
const (
	// CodeBadFrame: the receiver got a frame that breaks the protocol, or
	// one out of turn. The sender of the bad frame is at fault.
	CodeBadFrame = "bad-frame"
	// CodeUnknownCommunity: the responder does not serve this community.
	CodeUnknownCommunity = "unknown-community"
	// CodeTooManyRounds: the session exceeded the responder's round limit;
	// start a new one (sync resumes where it stopped, see §8).
	CodeTooManyRounds = "too-many-rounds"
	// CodeBusy: the responder is at capacity or the requester is over its
	// rate limit; retry later with backoff.
	CodeBusy = "busy"
	// CodeInternal: the responder failed on its own (storage); retry later.
	CodeInternal = "internal"
)
