package body

import (
	"bytes"
	"fmt"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
)

// MaxReasonBytes bounds a revocation's reason.
const MaxReasonBytes = 1 << 10

// Revocation is the body of a revocation record: its author withdraws one of
// its own earlier records, which then stops counting (an attestation no
// longer certifies, for instance). The target stays stored and readable,
// marked revoked: records are grow-only.
type Revocation struct {
	// Target is the record ID of the revoked record.
	Target cid.Cid
	// Reason is optional free text for people.
	Reason string
}

type revocationWire struct {
	Reason string `cbor:"reason,omitempty"`
	Target []byte `cbor:"target"`
}

func (r Revocation) toWire() revocationWire {
	w := revocationWire{Reason: r.Reason}
	if r.Target.Defined() {
		w.Target = r.Target.Bytes()
	}
	return w
}

func (w revocationWire) fromWire() (Revocation, error) {
	r := Revocation{Reason: w.Reason}
	if len(w.Target) == 0 {
		return r, nil // Validate reports the missing target
	}
	c, err := cid.Cast(w.Target)
	if err != nil {
		return Revocation{}, fmt.Errorf("%w: the revocation target is not a record ID: %w", ErrInvalid, err)
	}
	if !bytes.Equal(c.Bytes(), w.Target) {
		return Revocation{}, fmt.Errorf("%w: the revocation target is not in canonical binary form", ErrInvalid)
	}
	r.Target = c
	return r, nil
}

// Kind implements Body.
func (Revocation) Kind() record.Kind { return record.KindRevocation }

// Validate implements Body. That the target exists, is not itself a
// revocation and has the same author is checked by the registry, which can
// look it up.
func (r Revocation) Validate(created int64) error {
	if !r.Target.Defined() {
		return fmt.Errorf("%w: the revocation names no target record", ErrInvalid)
	}
	if !isRecordID(r.Target) {
		return fmt.Errorf("%w: the revocation target %s is not a record ID (CIDv1 dag-cbor sha2-256)", ErrInvalid, clip(r.Target.String()))
	}
	return checkText("revocation reason", r.Reason, textRule{max: MaxReasonBytes, bytes: true, multiline: true})
}

// MarshalCBOR encodes the revocation in its canonical wire form, so it can
// be passed to record.Sign as it is. It does not validate.
func (r Revocation) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(r.toWire())
}

// UnmarshalCBOR decodes with the strictness of DecodeRevocation.
func (r *Revocation) UnmarshalCBOR(b []byte) error {
	v, err := DecodeRevocation(b)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// DecodeRevocation reads a revocation body and checks it on its own.
func DecodeRevocation(raw []byte) (Revocation, error) {
	return decodeRevocation(raw, 0)
}

func decodeRevocation(raw []byte, created int64) (Revocation, error) {
	var w revocationWire
	if err := decodeWire(record.KindRevocation, raw, &w); err != nil {
		return Revocation{}, err
	}
	r, err := w.fromWire()
	if err != nil {
		return Revocation{}, err
	}
	if err := r.Validate(created); err != nil {
		return Revocation{}, err
	}
	if err := checkReencodes(record.KindRevocation, raw, w); err != nil {
		return Revocation{}, err
	}
	return r, nil
}
