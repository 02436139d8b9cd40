package body

import (
	"errors"

	"github.com/agora-p2p/agora/protocol/record"
)

// The sentinels below classify every error this package returns, together
// with record.ErrMalformed and record.ErrNotCanonical for bodies that are not
// the one encoding of a valid schema value. Test with errors.Is.
var (
	// ErrInvalid reports a body that decodes but breaks a rule of its kind
	// (a limit, an ID of the wrong form, an expiry before creation). It
	// matches record.ErrMalformed too, so record.IsSenderFault holds: a
	// compatible node never signs such a body.
	ErrInvalid error = invalidError{}
	// ErrUnknownField reports a body that carries a key or an enumerated
	// value (subject type, verdict) this version does not know. It is not
	// the sender's fault: a newer node may have written it.
	ErrUnknownField = errors.New("the record's body uses a field or value this node does not know; upgrade Agora to read it")
	// ErrNotSupported reports a known kind whose body this version cannot
	// read yet.
	ErrNotSupported = errors.New("records of this kind are not supported yet by this node; upgrade Agora to read them")
)

type invalidError struct{}

func (invalidError) Error() string {
	return "the record's body breaks the rules of its kind; it was not produced by a compatible Agora node"
}

// Is makes ErrInvalid match record.ErrMalformed, so that callers that only
// know the envelope's sentinels classify it correctly.
func (invalidError) Is(target error) bool { return target == record.ErrMalformed }
