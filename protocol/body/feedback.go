package body

import (
	"errors"
	"fmt"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
)

// Feedback limits.
const (
	MaxScore          = 1000
	MaxCommentBytes   = 1 << 10
	feedbackWireExtra = 64 // keys and headers around the receipt and comment
)

// Feedback is the body of a feedback record: the requester of a delegated
// task rates the executor's work. It carries the executor-signed receipt
// itself, so nobody can rate a task that did not happen, and only the
// receipt's requester may file it (checked against the envelope by
// CheckEnvelope). One feedback per receipt and author counts: a later one
// supersedes an earlier one.
type Feedback struct {
	// Receipt is the executor's receipt, verified.
	Receipt *task.Receipt
	// Score is the rating in thousandths: 0 worst, 1000 best.
	Score int64
	// Comment is optional free text for people.
	Comment string
}

type feedbackWire struct {
	Score   int64  `cbor:"score"`
	Comment string `cbor:"comment,omitempty"`
	Receipt []byte `cbor:"receipt"`
}

// Kind implements Body.
func (Feedback) Kind() record.Kind { return record.KindFeedback }

// Validate implements Body: the receipt is present and signed (a receipt
// built with task.Receipt.Sign or task.DecodeReceipt), the score is in
// range and the comment is short text. A feedback cannot predate the task
// it rates.
func (f Feedback) Validate(created int64) error {
	if f.Receipt == nil || len(f.Receipt.Raw()) == 0 {
		return fmt.Errorf("%w: the feedback carries no signed receipt", ErrInvalid)
	}
	if f.Score < 0 || f.Score > MaxScore {
		return fmt.Errorf("%w: the score must be between 0 and %d, not %d", ErrInvalid, MaxScore, f.Score)
	}
	if f.Receipt.Requester == f.Receipt.Executor {
		return fmt.Errorf("%w: the receipt is for a task the node ran for itself; only delegated tasks are rated", ErrInvalid)
	}
	if created != 0 && created < f.Receipt.Ended-record.MaxClockSkew.Milliseconds() {
		return fmt.Errorf("%w: the feedback is dated before the task it rates ended", ErrInvalid)
	}
	return checkText("feedback comment", f.Comment, textRule{max: MaxCommentBytes, bytes: true, multiline: true})
}

// CheckEnvelope applies the rules that relate the body to its record: the
// author must be the receipt's requester and the community the receipt's.
func (f Feedback) CheckEnvelope(r *record.Record) error {
	switch {
	case r.Author != f.Receipt.Requester:
		return fmt.Errorf("%w: the feedback is by %s, but only the task's requester %s may rate it", ErrInvalid, r.Author, f.Receipt.Requester)
	case !r.Community.Equals(f.Receipt.Community):
		return fmt.Errorf("%w: the receipt belongs to community %s, the feedback to %s", ErrInvalid, f.Receipt.Community, r.Community)
	}
	return nil
}

func (f Feedback) toWire() feedbackWire {
	w := feedbackWire{Score: f.Score, Comment: f.Comment}
	if f.Receipt != nil {
		w.Receipt = f.Receipt.Raw()
	}
	return w
}

// MarshalCBOR encodes the feedback in its canonical wire form. It does not
// validate.
func (f Feedback) MarshalCBOR() ([]byte, error) {
	return canon.Marshal(f.toWire())
}

// UnmarshalCBOR decodes with the strictness of DecodeFeedback.
func (f *Feedback) UnmarshalCBOR(b []byte) error {
	v, err := DecodeFeedback(b)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// DecodeFeedback reads a feedback body and checks it on its own, the
// receipt's signature included.
func DecodeFeedback(raw []byte) (Feedback, error) {
	return decodeFeedback(raw, 0)
}

func decodeFeedback(raw []byte, created int64) (Feedback, error) {
	if len(raw) > task.MaxReceipt+MaxCommentBytes+feedbackWireExtra {
		return Feedback{}, fmt.Errorf("%w: a feedback body of %d bytes is over the limit", ErrInvalid, len(raw))
	}
	var w feedbackWire
	if err := decodeWire(record.KindFeedback, raw, &w); err != nil {
		return Feedback{}, err
	}
	f := Feedback{Score: w.Score, Comment: w.Comment}
	if len(w.Receipt) > 0 {
		rc, err := task.DecodeReceipt(w.Receipt)
		if err != nil {
			if errors.Is(err, task.ErrBadReceipt) {
				return Feedback{}, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			return Feedback{}, fmt.Errorf("%w: the receipt: %w", ErrInvalid, err)
		}
		f.Receipt = rc
	}
	if err := f.Validate(created); err != nil {
		return Feedback{}, err
	}
	if err := checkReencodes(record.KindFeedback, raw, w); err != nil {
		return Feedback{}, err
	}
	return f, nil
}
