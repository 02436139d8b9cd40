package body

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/fxamacker/cbor/v2"
)

// Body is a decoded record body. Every kind's body type implements it, so
// callers can validate and sign any of them the same way.
//
// Schemas evolve append-only: a kind's body may gain optional keys, which are
// omitted from the encoding when empty, so a newer node reads every older
// body and an older node reads a newer one as long as the new keys are
// unused. Anything else (a required key, a changed meaning) is a new kind.
type Body interface {
	// Kind is the record kind this body belongs to.
	Kind() record.Kind
	// Validate checks every rule of the kind. created is the creation time
	// of the enclosing record in unix milliseconds; 0 skips the rules that
	// relate the body to it (such as an expiry after creation).
	Validate(created int64) error
}

// Decode reads the body of a record of the given kind and checks it on its
// own (Validate(0)). It returns an Attestation, a Revocation, an Advert, a
// Feedback, a Proposal, a Vote or a Tally; a known kind whose body is not
// defined yet fails with ErrNotSupported, an unknown kind with
// record.ErrUnknownKind.
func Decode(kind record.Kind, raw []byte) (Body, error) {
	return decode(kind, raw, 0)
}

// decode reads and validates a body once, against created.
func decode(kind record.Kind, raw []byte, created int64) (Body, error) {
	var (
		b   Body
		err error
	)
	switch kind {
	case record.KindAttestation:
		b, err = decodeAttestation(raw, created)
	case record.KindRevocation:
		b, err = decodeRevocation(raw, created)
	case record.KindAdvert:
		b, err = decodeAdvert(raw, created)
	case record.KindFeedback:
		b, err = decodeFeedback(raw, created)
	case record.KindProposal:
		b, err = decodeProposal(raw, created)
	case record.KindVote:
		b, err = decodeVote(raw, created)
	case record.KindTally:
		b, err = decodeTally(raw, created)
	default:
		return nil, unsupported(kind)
	}
	if err != nil {
		return nil, err // not a zero body in a non-nil interface
	}
	return b, nil
}

func unsupported(kind record.Kind) error {
	if kind.Valid() {
		return fmt.Errorf("%w (kind %q)", ErrNotSupported, kind)
	}
	return fmt.Errorf("%w: kind %q", record.ErrUnknownKind, clip(string(kind)))
}

// DecodeRecord reads a record's body and checks it against the envelope too
// (a feedback's author must be its receipt's requester, for instance).
// It does not verify the record's signature: read records with record.Open.
func DecodeRecord(r *record.Record) (Body, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: no record", record.ErrMalformed)
	}
	b, err := decode(r.Kind, r.Body, r.Created)
	if err != nil {
		return nil, err
	}
	if e, ok := b.(interface{ CheckEnvelope(*record.Record) error }); ok {
		if err := e.CheckEnvelope(r); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeWire decodes raw into the wire struct w with canon's strictness and
// classifies the failure: an unknown key may come from a newer node, while
// anything else is the author's fault.
func decodeWire(kind record.Kind, raw []byte, w any) error {
	err := canon.Unmarshal(raw, w)
	if err == nil {
		return nil
	}
	var unknown *cbor.UnknownFieldError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: the %s body has a key this node does not know", ErrUnknownField, kind)
	case errors.Is(err, canon.ErrNotCanonical):
		return fmt.Errorf("%w: %s body: %w", record.ErrNotCanonical, kind, err)
	}
	return fmt.Errorf("%w: %s body: %w", record.ErrMalformed, kind, err)
}

// checkReencodes enforces one encoding per value: canonical CBOR alone still
// allows an optional key to be present with its empty value, or a required
// key to be left out.
func checkReencodes(kind record.Kind, raw []byte, w any) error {
	re, err := canon.Marshal(w)
	if err != nil {
		return fmt.Errorf("%w: %s body: %w", record.ErrMalformed, kind, err)
	}
	if !bytes.Equal(re, raw) {
		return fmt.Errorf("%w: the %s body does not re-encode to the same bytes (a required key is missing or an optional one is present but empty)", record.ErrNotCanonical, kind)
	}
	return nil
}
