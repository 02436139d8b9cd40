package task

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-msgio"
	"github.com/multiformats/go-varint"
)

// ProtocolID is the libp2p protocol of delegation.
const ProtocolID = "/agora/task/1.0.0"

// Limits of the protocol.
const (
	// MaxPayload bounds the JSON of a task's input or output.
	MaxPayload = 1 << 20
	// MaxFrame bounds one encoded frame: a payload and a receipt with room
	// for the other fields.
	MaxFrame = MaxPayload + 8<<10
	// MaxHops is the largest hops_left a request may carry.
	MaxHops = 8
	// MaxAncestry is the longest ancestry: the IDs of the tasks this one
	// is a subtask of, root first.
	MaxAncestry = 16
	// MaxReason bounds the bytes of a rejection, failure, cancel or
	// progress text.
	MaxReason = 1024
	// MaxCode bounds the bytes of a code.
	MaxCode = 64
)

// Type is a frame's type.
type Type uint64

// Frame types.
const (
	TypeRequest  Type = 1
	TypeAccepted Type = 2
	TypeRejected Type = 3
	TypeProgress Type = 4
	TypeResult   Type = 5
	TypeFailed   Type = 6
	TypeCancel   Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeRequest:
		return "request"
	case TypeAccepted:
		return "accepted"
	case TypeRejected:
		return "rejected"
	case TypeProgress:
		return "progress"
	case TypeResult:
		return "result"
	case TypeFailed:
		return "failed"
	case TypeCancel:
		return "cancel"
	}
	return fmt.Sprintf("type-%d", uint64(t))
}

// Errors of decoding. A peer that sends a frame failing with them is at
// fault.
var (
	ErrBadFrame      = errors.New("task: malformed frame")
	ErrFrameTooLarge = errors.New("task: frame too large")
)

// Frame is one message of the protocol: a *Request, *Accepted, *Rejected,
// *Progress, *Result, *Failed or *Cancel.
type Frame interface {
	Type() Type
	check() error
}

// Request asks an executor to run a skill.
type Request struct {
	ID        string   // the requester's task ID, see ValidID
	Community cid.Cid  // the community the request is made in
	Skill     string   // skill ID
	Input     []byte   // JSON
	Deadline  int64    // unix ms; the executor gives up then
	HopsLeft  uint64   // further delegations allowed below this task
	Ancestry  []string // IDs of the tasks this is a subtask of, root first
}

// Accepted says the executor admitted the task to the named agent.
type Accepted struct {
	ID    string
	Agent string
}

// Rejected says the executor did not admit the task; nothing ran.
type Rejected struct {
	ID     string
	Code   string // e.g. busy, unknown-skill, invalid-input, rate-limited, not-member
	Reason string
}

// Progress reports how an admitted task is going. Seq counts from 1.
type Progress struct {
	ID      string
	Seq     uint64
	Message string
	Percent int64 // 0..100, or -1 when unknown
}

// Result ends a task that completed: its output and the executor's receipt.
type Result struct {
	ID      string
	Output  []byte // JSON
	Receipt []byte // an encoded, signed Receipt
}

// Failed ends an admitted task that did not complete. Receipt is an
// encoded, signed Receipt with status failed (it may be empty when the
// executor could not sign one).
type Failed struct {
	ID      string
	Code    string
	Reason  string
	Receipt []byte
}

// Cancel asks the executor to stop a task.
type Cancel struct {
	ID     string
	Reason string
}

func (*Request) Type() Type  { return TypeRequest }
func (*Accepted) Type() Type { return TypeAccepted }
func (*Rejected) Type() Type { return TypeRejected }
func (*Progress) Type() Type { return TypeProgress }
func (*Result) Type() Type   { return TypeResult }
func (*Failed) Type() Type   { return TypeFailed }
func (*Cancel) Type() Type   { return TypeCancel }

// wire is every frame's map; each type uses a fixed subset of the keys and
// the others must be absent.
type wire struct {
	T         uint64   `cbor:"t"`
	ID        string   `cbor:"id"`
	Seq       uint64   `cbor:"seq,omitempty"`
	Code      string   `cbor:"code,omitempty"`
	Hops      uint64   `cbor:"hops,omitempty"`
	Agent     string   `cbor:"agent,omitempty"`
	Input     []byte   `cbor:"input,omitempty"`
	Skill     string   `cbor:"skill,omitempty"`
	Output    []byte   `cbor:"output,omitempty"`
	Reason    string   `cbor:"reason,omitempty"`
	Receipt   []byte   `cbor:"receipt,omitempty"`
	Message   string   `cbor:"message,omitempty"`
	Percent   int64    `cbor:"percent,omitempty"`
	Ancestry  []string `cbor:"ancestry,omitempty"`
	Deadline  int64    `cbor:"deadline,omitempty"`
	Community []byte   `cbor:"community,omitempty"`
}

// ValidID reports whether id is a well-formed task ID: 8 to 64 characters
// of [A-Za-z0-9_-]. Requesters make them random (NewID). (A loop rather
// than a regular expression: every frame and receipt has one, and the
// expression cost a few µs of each round trip.)
func ValidID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !lowerOrDigit(c) && (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// ValidSkill reports whether s is a well-formed skill ID: a lower-case
// letter or digit, then up to 127 of those, '.', '_' and '-'.
func ValidSkill(s string) bool {
	if len(s) == 0 || len(s) > 128 || !lowerOrDigit(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !lowerOrDigit(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func lowerOrDigit(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadFrame, fmt.Sprintf(format, args...))
}

func checkID(id string) error {
	if !ValidID(id) {
		return bad("task ID %q is not 8 to 64 characters of [A-Za-z0-9_-]", clip(id))
	}
	return nil
}

func checkText(field, s string, max int, required bool) error {
	switch {
	case required && s == "":
		return bad("%s is empty", field)
	case len(s) > max:
		return bad("%s of %d bytes, limit %d", field, len(s), max)
	case !utf8.ValidString(s):
		return bad("%s is not UTF-8", field)
	}
	return nil
}

func checkJSON(field string, b []byte, required bool) error {
	switch {
	case len(b) == 0 && required:
		return bad("%s is empty", field)
	case len(b) > MaxPayload:
		return bad("%s of %d bytes, limit %d", field, len(b), MaxPayload)
	case len(b) > 0 && !json.Valid(b):
		return bad("%s is not JSON", field)
	}
	return nil
}

func (r *Request) check() error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	if !r.Community.Defined() {
		return bad("request names no community")
	}
	if !ValidSkill(r.Skill) {
		return bad("skill %q is not a skill ID", clip(r.Skill))
	}
	if err := checkJSON("input", r.Input, true); err != nil {
		return err
	}
	if r.Deadline <= 0 {
		return bad("request has no deadline")
	}
	if r.HopsLeft > MaxHops {
		return bad("hops_left %d, limit %d", r.HopsLeft, MaxHops)
	}
	if len(r.Ancestry) > MaxAncestry {
		return bad("ancestry of %d tasks, limit %d", len(r.Ancestry), MaxAncestry)
	}
	for _, a := range r.Ancestry {
		if err := checkID(a); err != nil {
			return err
		}
	}
	return nil
}

func (a *Accepted) check() error {
	if err := checkID(a.ID); err != nil {
		return err
	}
	return checkText("agent", a.Agent, 128, true)
}

func (r *Rejected) check() error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	if err := checkText("code", r.Code, MaxCode, true); err != nil {
		return err
	}
	return checkText("reason", r.Reason, MaxReason, false)
}

func (p *Progress) check() error {
	if err := checkID(p.ID); err != nil {
		return err
	}
	if p.Seq == 0 {
		return bad("progress seq must start at 1")
	}
	if p.Percent < -1 || p.Percent > 100 {
		return bad("progress percent %d is not -1..100", p.Percent)
	}
	return checkText("message", p.Message, MaxReason, false)
}

func (r *Result) check() error {
	if err := checkID(r.ID); err != nil {
		return err
	}
	if err := checkJSON("output", r.Output, true); err != nil {
		return err
	}
	if len(r.Receipt) == 0 || len(r.Receipt) > MaxReceipt {
		return bad("result receipt of %d bytes, want 1 to %d", len(r.Receipt), MaxReceipt)
	}
	return nil
}

func (f *Failed) check() error {
	if err := checkID(f.ID); err != nil {
		return err
	}
	if err := checkText("code", f.Code, MaxCode, true); err != nil {
		return err
	}
	if len(f.Receipt) > MaxReceipt {
		return bad("failure receipt of %d bytes, limit %d", len(f.Receipt), MaxReceipt)
	}
	return checkText("reason", f.Reason, MaxReason, false)
}

func (c *Cancel) check() error {
	if err := checkID(c.ID); err != nil {
		return err
	}
	return checkText("reason", c.Reason, MaxReason, false)
}

func toWire(f Frame) (wire, error) {
	if f == nil {
		return wire{}, bad("nil frame")
	}
	if err := f.check(); err != nil {
		return wire{}, err
	}
	return wireOf(f)
}

// wireOf is toWire for a frame already checked.
func wireOf(f Frame) (wire, error) {
	w := wire{T: uint64(f.Type())}
	switch f := f.(type) {
	case *Request:
		w.ID, w.Community, w.Skill, w.Input = f.ID, f.Community.Bytes(), f.Skill, f.Input
		w.Deadline, w.Hops, w.Ancestry = f.Deadline, f.HopsLeft, f.Ancestry
	case *Accepted:
		w.ID, w.Agent = f.ID, f.Agent
	case *Rejected:
		w.ID, w.Code, w.Reason = f.ID, f.Code, f.Reason
	case *Progress:
		w.ID, w.Seq, w.Message, w.Percent = f.ID, f.Seq, f.Message, f.Percent
	case *Result:
		w.ID, w.Output, w.Receipt = f.ID, f.Output, f.Receipt
	case *Failed:
		w.ID, w.Code, w.Reason, w.Receipt = f.ID, f.Code, f.Reason, f.Receipt
	case *Cancel:
		w.ID, w.Reason = f.ID, f.Reason
	default:
		return wire{}, bad("unknown frame %T", f)
	}
	return w, nil
}

// allowed lists the keys each type may carry besides t and id (omitted when
// empty, so some may be absent).
var allowed = map[Type]map[string]bool{
	TypeRequest:  set("community", "skill", "input", "deadline", "hops", "ancestry"),
	TypeAccepted: set("agent"),
	TypeRejected: set("code", "reason"),
	TypeProgress: set("seq", "message", "percent"),
	TypeResult:   set("output", "receipt"),
	TypeFailed:   set("code", "reason", "receipt"),
	TypeCancel:   set("reason"),
}

func set(keys ...string) map[string]bool {
	m := map[string]bool{"t": true, "id": true}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// Encode returns f's canonical encoding, without the length prefix. It
// checks f as Decode would.
func Encode(f Frame) ([]byte, error) {
	w, err := toWire(f)
	if err != nil {
		return nil, err
	}
	return encodeWire(f, w)
}

func encodeWire(f Frame, w wire) ([]byte, error) {
	b, err := canon.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("task: encode %s: %w", f.Type(), err)
	}
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrFrameTooLarge, f.Type(), len(b), MaxFrame)
	}
	return b, nil
}

// Decode reads one frame (no length prefix). It accepts only the encoding
// Encode produces and checks every field.
func Decode(b []byte) (Frame, error) {
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(b), MaxFrame)
	}
	var w wire
	if err := canon.Unmarshal(b, &w); err != nil {
		return nil, bad("%v", err)
	}
	typ := Type(w.T)
	ok := allowed[typ]
	if ok == nil {
		return nil, bad("unknown frame type %d", w.T)
	}
	var f Frame
	switch typ {
	case TypeRequest:
		c, err := cid.Cast(w.Community)
		if err != nil {
			return nil, bad("request community: %v", err)
		}
		f = &Request{ID: w.ID, Community: c, Skill: w.Skill, Input: w.Input, Deadline: w.Deadline, HopsLeft: w.Hops, Ancestry: w.Ancestry}
	case TypeAccepted:
		f = &Accepted{ID: w.ID, Agent: w.Agent}
	case TypeRejected:
		f = &Rejected{ID: w.ID, Code: w.Code, Reason: w.Reason}
	case TypeProgress:
		f = &Progress{ID: w.ID, Seq: w.Seq, Message: w.Message, Percent: w.Percent}
	case TypeResult:
		f = &Result{ID: w.ID, Output: w.Output, Receipt: w.Receipt}
	case TypeFailed:
		f = &Failed{ID: w.ID, Code: w.Code, Reason: w.Reason, Receipt: w.Receipt}
	case TypeCancel:
		f = &Cancel{ID: w.ID, Reason: w.Reason}
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	// One encoding per frame: the decoder is lenient in places (an empty
	// array where omitempty leaves a key out), the encoder is not. The
	// frame's own encoding has exactly the keys its type allows, so this
	// also refuses any other key (the wire struct has every type's keys);
	// only a refused frame pays for finding which key it was.
	w2, err := wireOf(f)
	var again []byte
	if err == nil {
		again, err = encodeWire(f, w2)
	}
	if err != nil || !bytes.Equal(again, b) {
		var keys map[string]canon.RawMessage
		if canon.Unmarshal(b, &keys) == nil {
			for k := range keys {
				if !ok[k] {
					return nil, bad("%s frame has key %q", typ, clip(k))
				}
			}
		}
		return nil, bad("%s frame is not in its canonical encoding", typ)
	}
	return f, nil
}

// Write writes f as an unsigned varint length and its encoding, in one
// Write call (go-msgio's varint framing, as libp2p protocols use).
func Write(w io.Writer, f Frame) error {
	b, err := Append(nil, f)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("task: write %s frame: %w", f.Type(), err)
	}
	return nil
}

// Append appends f as Write writes it (length prefix and encoding) to dst,
// so that several frames can go out in one write. On error dst is
// returned unchanged.
func Append(dst []byte, f Frame) ([]byte, error) {
	b, err := Encode(f)
	if err != nil {
		return dst, err
	}
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...), nil
}

// Read reads one frame written by Write, allocating nothing for a frame
// whose announced length is over max (at most MaxFrame). A clean end of
// stream before a frame is io.EOF; the length prefix must be a minimal
// varint. Read consumes no byte past the frame.
func Read(r io.Reader, max int) (Frame, error) {
	max = min(max, MaxFrame)
	if max <= 0 {
		max = MaxFrame
	}
	mr := msgio.NewVarintReaderSize(r, max)
	buf, err := mr.ReadMsg()
	switch {
	case err == io.EOF && buf == nil:
		return nil, io.EOF
	case errors.Is(err, msgio.ErrMsgTooLarge):
		return nil, fmt.Errorf("%w: limit %d", ErrFrameTooLarge, max)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("task: read frame: %w", io.ErrUnexpectedEOF)
	case err != nil && isVarintError(err):
		return nil, bad("length prefix: %v", err)
	case err != nil:
		return nil, fmt.Errorf("task: read frame: %w", err)
	case len(buf) == 0:
		return nil, bad("empty frame")
	}
	defer mr.ReleaseMsg(buf)
	return Decode(buf) // Decode copies what it keeps
}

func isVarintError(err error) bool {
	return errors.Is(err, varint.ErrOverflow) || errors.Is(err, varint.ErrNotMinimal) || errors.Is(err, varint.ErrUnderflow)
}

func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
