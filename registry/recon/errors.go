package recon

import (
	"errors"
	"strings"
	"unicode/utf8"

	wire "github.com/agora-p2p/agora/protocol/recon"
)

// Errors a Session returns besides wire.ErrBadFrame (the peer broke the
// protocol: a frame out of turn, an ID listed twice, a settled range
// reopened) and *wire.Error (the peer ended the session and said why).
var (
	// ErrUnknownCommunity: the peer's Open names a community other than
	// the session's.
	ErrUnknownCommunity = errors.New("the peer asked to sync a community this session does not serve")
	// ErrTooManyRounds: a responder got more rounds than Config.MaxRounds.
	// Not necessarily the peer's fault: very different sets need many
	// rounds, and a new session resumes the work.
	ErrTooManyRounds = errors.New("the sync took more rounds than allowed; start a new sync to continue where it stopped")
	// ErrSessionOver: the caller used a session that finished or failed,
	// or called Initiate on a session that had started.
	ErrSessionOver = errors.New("recon: the session is over or already started; create a new one")
)

// IsPeerFault reports whether err shows that the peer misbehaved, so that
// the caller should score it down (see docs/protocol.md §8).
func IsPeerFault(err error) bool { return errors.Is(err, wire.ErrBadFrame) }

// ErrorFrame returns the Error frame to send the peer before closing the
// stream because of err, or nil when err came from the peer's own Error
// frame (which needs no answer).
func ErrorFrame(err error) *wire.Error {
	var pe *wire.Error
	if errors.As(err, &pe) {
		return nil
	}
	code := wire.CodeInternal
	switch {
	case errors.Is(err, wire.ErrBadFrame), errors.Is(err, wire.ErrUnknownType):
		code = wire.CodeBadFrame
	case errors.Is(err, ErrUnknownCommunity):
		code = wire.CodeUnknownCommunity
	case errors.Is(err, ErrTooManyRounds):
		code = wire.CodeTooManyRounds
	}
	reason := err.Error()
	if len(reason) > wire.MaxReasonLength {
		reason = reason[:wire.MaxReasonLength]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return &wire.Error{Code: code, Reason: strings.ToValidUTF8(reason, "")}
}
