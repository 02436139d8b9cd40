package recon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/agora-p2p/agora/protocol/canon"
)

// Wire forms. Each frame is a CBOR map holding exactly the keys of its type,
// "type" included; nothing is optional, so a frame has one encoding.

type wireOpen struct {
	Type      uint64      `cbor:"type"`
	Ranges    []wireRange `cbor:"ranges"`
	Community []byte      `cbor:"community"`
}

type wireReconcile struct {
	Type   uint64      `cbor:"type"`
	Ranges []wireRange `cbor:"ranges"`
}

type wireDone struct {
	Type uint64 `cbor:"type"`
}

type wireFetch struct {
	Cids [][]byte `cbor:"cids"`
	Type uint64   `cbor:"type"`
}

type wireRecords struct {
	More    bool     `cbor:"more"`
	Type    uint64   `cbor:"type"`
	Records [][]byte `cbor:"records"`
}

type wireError struct {
	Code   string `cbor:"code"`
	Type   uint64 `cbor:"type"`
	Reason string `cbor:"reason"`
}

type wireCatchUp struct {
	Type      uint64 `cbor:"type"`
	Community []byte `cbor:"community"`
}

// keys lists each type's map keys, for the exact key-set check.
var keys = map[Type][]string{
	TypeOpen:      {"type", "ranges", "community"},
	TypeReconcile: {"type", "ranges"},
	TypeDone:      {"type"},
	TypeFetch:     {"cids", "type"},
	TypeRecords:   {"more", "type", "records"},
	TypeError:     {"code", "type", "reason"},
	TypeCatchUp:   {"type", "community"},
}

// wireRange is [bound, prefix, mode, payload]: an array, not a map, because
// a message carries thousands of them. bound is 0 for Infinity, else the
// increase of Created over the previous range's bound, plus one. payload is
// empty (skip), the fingerprint, or the concatenated IDs.
type wireRange struct {
	_       struct{} `cbor:",toarray"`
	Bound   uint64
	Prefix  []byte
	Mode    uint64
	Payload []byte
}

func rangesToWire(rs []Range) ([]wireRange, error) {
	if err := ValidateRanges(rs); err != nil {
		return nil, err
	}
	out := make([]wireRange, len(rs))
	var prev Bound
	for i, r := range rs {
		w := wireRange{Bound: boundDelta(prev, r.Upper), Prefix: r.Upper.Prefix, Mode: uint64(r.Mode)}
		switch r.Mode {
		case ModeFingerprint:
			w.Payload = r.Fingerprint[:]
		case ModeIDList:
			w.Payload = make([]byte, 0, len(r.IDs)*IDSize)
			for _, id := range r.IDs {
				w.Payload = append(w.Payload, id...)
			}
		}
		out[i] = w
		prev = r.Upper
	}
	return out, nil
}

func rangesFromWire(ws []wireRange) ([]Range, error) {
	if len(ws) > MaxRanges {
		return nil, fmt.Errorf("%w: %d ranges, more than %d", ErrBadFrame, len(ws), MaxRanges)
	}
	out := make([]Range, len(ws))
	var prev Bound
	for i, w := range ws {
		r := Range{Mode: Mode(w.Mode)}
		switch {
		case prev.IsInfinity():
			return nil, fmt.Errorf("%w: range %d follows the infinity bound", ErrBadFrame, i)
		case w.Bound == 0:
			r.Upper = Infinity
		case w.Bound-1 > math.MaxUint64-1-prev.Created:
			return nil, fmt.Errorf("%w: range %d: bound beyond the largest time", ErrBadFrame, i)
		default:
			r.Upper.Created = prev.Created + w.Bound - 1
		}
		if len(w.Prefix) > 0 {
			r.Upper.Prefix = w.Prefix
		}
		switch r.Mode {
		case ModeSkip:
			if len(w.Payload) != 0 {
				return nil, fmt.Errorf("%w: range %d: a skip range carries %d bytes", ErrBadFrame, i, len(w.Payload))
			}
		case ModeFingerprint:
			if len(w.Payload) != FingerprintSize {
				return nil, fmt.Errorf("%w: range %d: fingerprint is %d bytes, want %d", ErrBadFrame, i, len(w.Payload), FingerprintSize)
			}
			r.Fingerprint = Fingerprint(w.Payload)
		case ModeIDList:
			if len(w.Payload)%IDSize != 0 {
				return nil, fmt.Errorf("%w: range %d: ID list of %d bytes is not a whole number of %d-byte IDs", ErrBadFrame, i, len(w.Payload), IDSize)
			}
			r.IDs = make([][]byte, len(w.Payload)/IDSize)
			for j := range r.IDs {
				r.IDs[j] = w.Payload[j*IDSize : (j+1)*IDSize : (j+1)*IDSize]
			}
		default:
			return nil, fmt.Errorf("%w: range %d: unknown mode %d", ErrBadFrame, i, w.Mode)
		}
		out[i] = r
		prev = r.Upper
	}
	if err := ValidateRanges(out); err != nil {
		return nil, err
	}
	return out, nil
}

// toWire checks f and returns its wire form.
func toWire(f Frame) (any, error) {
	switch f := f.(type) {
	case *Open:
		if err := checkCID(f.Community); err != nil {
			return nil, fmt.Errorf("open: community: %w", err)
		}
		rs, err := rangesToWire(f.Ranges)
		if err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
		return wireOpen{Type: uint64(TypeOpen), Community: f.Community, Ranges: rs}, nil
	case *Reconcile:
		rs, err := rangesToWire(f.Ranges)
		if err != nil {
			return nil, fmt.Errorf("reconcile: %w", err)
		}
		return wireReconcile{Type: uint64(TypeReconcile), Ranges: rs}, nil
	case *Done:
		return wireDone{Type: uint64(TypeDone)}, nil
	case *Fetch:
		if err := checkFetch(f.CIDs); err != nil {
			return nil, err
		}
		return wireFetch{Type: uint64(TypeFetch), Cids: f.CIDs}, nil
	case *Records:
		if err := checkRecords(f.Records, f.More); err != nil {
			return nil, err
		}
		return wireRecords{Type: uint64(TypeRecords), Records: f.Records, More: f.More}, nil
	case *Error:
		if err := checkError(f.Code, f.Reason); err != nil {
			return nil, err
		}
		return wireError{Type: uint64(TypeError), Code: f.Code, Reason: f.Reason}, nil
	case *CatchUp:
		if err := checkCID(f.Community); err != nil {
			return nil, fmt.Errorf("catch-up: community: %w", err)
		}
		return wireCatchUp{Type: uint64(TypeCatchUp), Community: f.Community}, nil
	case nil:
		return nil, errors.New("recon: encode: nil frame")
	}
	return nil, fmt.Errorf("recon: encode: unknown frame %T", f)
}

func checkFetch(cids [][]byte) error {
	if len(cids) == 0 || len(cids) > MaxFetchBatch {
		return fmt.Errorf("%w: fetch of %d CIDs (1 to %d allowed)", ErrBadFrame, len(cids), MaxFetchBatch)
	}
	seen := make(map[string]struct{}, len(cids))
	for i, c := range cids {
		if err := checkCID(c); err != nil {
			return fmt.Errorf("fetch: CID %d: %w", i, err)
		}
		if _, dup := seen[string(c)]; dup {
			return fmt.Errorf("%w: fetch names CID %d twice", ErrBadFrame, i)
		}
		seen[string(c)] = struct{}{}
	}
	return nil
}

func checkRecords(records [][]byte, more bool) error {
	if len(records) > MaxFetchBatch {
		return fmt.Errorf("%w: %d records in one frame, more than %d", ErrBadFrame, len(records), MaxFetchBatch)
	}
	if more && len(records) == 0 {
		return fmt.Errorf("%w: a records frame announces more but carries none", ErrBadFrame)
	}
	for i, r := range records {
		if len(r) == 0 || len(r) > maxRecordSize {
			return fmt.Errorf("%w: record %d is %d bytes (1 to %d allowed)", ErrBadFrame, i, len(r), maxRecordSize)
		}
	}
	return nil
}

func checkError(code, reason string) error {
	if len(code) == 0 || len(code) > MaxCodeLength {
		return fmt.Errorf("%w: error code of %d bytes (1 to %d allowed)", ErrBadFrame, len(code), MaxCodeLength)
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: error code has a byte outside a-z, 0-9 and '-'", ErrBadFrame)
		}
	}
	if len(reason) > MaxReasonLength {
		return fmt.Errorf("%w: error reason of %d bytes, more than %d", ErrBadFrame, len(reason), MaxReasonLength)
	}
	return nil
}

// EncodeFrame returns the canonical CBOR encoding of f, without the length
// prefix. It checks f as DecodeFrame would, so it never produces a frame a
// peer rejects.
func EncodeFrame(f Frame) ([]byte, error) {
	w, err := toWire(f)
	if err != nil {
		return nil, err
	}
	b, err := canon.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("recon: encode %s: %w", f.Type(), err)
	}
	if max := f.Type().maxSize(); len(b) > max {
		return nil, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrFrameTooLarge, f.Type(), len(b), max)
	}
	return b, nil
}

// DecodeFrame decodes one frame from its CBOR encoding (no length prefix).
// It accepts only the encoding EncodeFrame produces and checks every field
// of the frame's type.
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) > MaxRecordsFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(b))
	}
	var fields map[string]canon.RawMessage
	if err := canon.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	var t uint64
	if raw, ok := fields["type"]; !ok {
		return nil, fmt.Errorf("%w: no type", ErrBadFrame)
	} else if err := canon.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("%w: type: %w", ErrBadFrame, err)
	}
	typ := Type(t)
	want, ok := keys[typ]
	if !ok {
		return nil, fmt.Errorf("%w: type %d", ErrUnknownType, t)
	}
	if len(b) > typ.maxSize() {
		return nil, fmt.Errorf("%w: %s frame of %d bytes, limit %d", ErrFrameTooLarge, typ, len(b), typ.maxSize())
	}
	if len(fields) != len(want) {
		return nil, fmt.Errorf("%w: %s frame has %d fields, want %d", ErrBadFrame, typ, len(fields), len(want))
	}
	for _, k := range want {
		raw, ok := fields[k]
		if !ok {
			return nil, fmt.Errorf("%w: %s frame lacks %q", ErrBadFrame, typ, k)
		}
		if bytes.Equal(raw, []byte{0xf6}) {
			return nil, fmt.Errorf("%w: %s frame has null %q", ErrBadFrame, typ, k)
		}
	}
	f, err := fromWire(typ, b)
	if err != nil {
		return nil, fmt.Errorf("%s frame: %w", typ, err)
	}
	// The CBOR decoder is lenient about major types (it fills a byte string
	// field from an array of small integers), so a frame is accepted only in
	// the one encoding EncodeFrame gives it.
	if again, err := EncodeFrame(f); err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: %s frame is not in its canonical encoding", ErrBadFrame, typ)
	}
	return f, nil
}

func fromWire(typ Type, b []byte) (Frame, error) {
	bad := func(err error) error { return fmt.Errorf("%w: %w", ErrBadFrame, err) }
	switch typ {
	case TypeOpen:
		var w wireOpen
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		if err := checkCID(w.Community); err != nil {
			return nil, fmt.Errorf("community: %w", err)
		}
		rs, err := rangesFromWire(w.Ranges)
		if err != nil {
			return nil, err
		}
		return &Open{Community: w.Community, Ranges: rs}, nil
	case TypeReconcile:
		var w wireReconcile
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		rs, err := rangesFromWire(w.Ranges)
		if err != nil {
			return nil, err
		}
		return &Reconcile{Ranges: rs}, nil
	case TypeDone:
		var w wireDone
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		return &Done{}, nil
	case TypeFetch:
		var w wireFetch
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		if err := checkFetch(w.Cids); err != nil {
			return nil, err
		}
		return &Fetch{CIDs: w.Cids}, nil
	case TypeRecords:
		var w wireRecords
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		if err := checkRecords(w.Records, w.More); err != nil {
			return nil, err
		}
		return &Records{Records: w.Records, More: w.More}, nil
	case TypeError:
		var w wireError
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		if err := checkError(w.Code, w.Reason); err != nil {
			return nil, err
		}
		return &Error{Code: w.Code, Reason: w.Reason}, nil
	case TypeCatchUp:
		var w wireCatchUp
		if err := canon.Unmarshal(b, &w); err != nil {
			return nil, bad(err)
		}
		if err := checkCID(w.Community); err != nil {
			return nil, fmt.Errorf("community: %w", err)
		}
		return &CatchUp{Community: w.Community}, nil
	}
	return nil, fmt.Errorf("%w: type %d", ErrUnknownType, uint64(typ))
}

// WriteFrame writes f as an unsigned varint length followed by its encoding,
// in one Write.
func WriteFrame(w io.Writer, f Frame) error {
	b, err := EncodeFrame(f)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+len(b))
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	if _, err := w.Write(append(buf, b...)); err != nil {
		return fmt.Errorf("recon: write %s frame: %w", f.Type(), err)
	}
	return nil
}

// ReadFrame reads one frame written by WriteFrame. max bounds the frame's
// encoded size: pass MaxFrameSize, or MaxRecordsFrame where Records frames
// are expected; larger values are lowered to MaxRecordsFrame, and frames
// other than Records are held to MaxFrameSize whatever max is. The length is
// checked before anything is allocated for the frame.
//
// At a clean end of stream, before the first byte of a frame, ReadFrame
// returns io.EOF itself; a stream that ends inside a frame gives
// io.ErrUnexpectedEOF. ReadFrame reads no byte past the frame.
func ReadFrame(r io.Reader, max int) (Frame, error) {
	if max <= 0 {
		return nil, fmt.Errorf("recon: read frame: limit %d is not positive", max)
	}
	max = min(max, MaxRecordsFrame)
	br, ok := r.(io.ByteReader)
	if !ok {
		br = byteReader{r}
	}
	n, err := readUvarint(br)
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err != nil:
		return nil, fmt.Errorf("recon: read frame length: %w", err)
	case n == 0:
		return nil, fmt.Errorf("%w: empty frame", ErrBadFrame)
	case n > uint64(max):
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("recon: read %d-byte frame: %w", n, err)
	}
	return DecodeFrame(buf)
}

// byteReader reads the length prefix a byte at a time, so that nothing past
// the frame is consumed from a reader without ReadByte.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var p [1]byte
	if _, err := io.ReadFull(b.r, p[:]); err != nil {
		return 0, err
	}
	return p[0], nil
}

// maxVarintLen is the longest unsigned varint multiformats allows: 9 bytes,
// 63 bits.
const maxVarintLen = 9

// readUvarint reads a multiformats unsigned varint: LEB128, minimal, at most
// maxVarintLen bytes.
func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == maxVarintLen-1 && b >= 0x80 {
			return 0, fmt.Errorf("%w: length prefix longer than %d bytes", ErrBadFrame, maxVarintLen)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: length prefix not minimally encoded", ErrBadFrame)
			}
			return x, nil
		}
	}
}
