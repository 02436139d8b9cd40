package recon

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/protocol/canon"
)

func id(b byte) []byte { return bytes.Repeat([]byte{b}, IDSize) }

func cidOf(b byte) []byte {
	c, err := CIDFromID(id(b))
	if err != nil {
		panic(err)
	}
	return c
}

func sampleRanges() []Range {
	return []Range{
		{Upper: Bound{Created: 1767225600000}, Mode: ModeSkip},
		{Upper: Bound{Created: 1767225600000, Prefix: []byte{0x80}}, Mode: ModeFingerprint, Fingerprint: Fingerprint{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{Upper: Bound{Created: 1767225600500}, Mode: ModeIDList, IDs: [][]byte{id(1), id(2)}},
		{Upper: Bound{Created: 1767225600501, Prefix: []byte{0, 1}}, Mode: ModeIDList, IDs: [][]byte{}},
		{Upper: Infinity, Mode: ModeFingerprint},
	}
}

func sampleFrames() []Frame {
	return []Frame{
		&Open{Community: cidOf(9), Ranges: sampleRanges()},
		&Open{Community: cidOf(9), Ranges: []Range{}},
		&Reconcile{Ranges: sampleRanges()},
		&Reconcile{},
		&Done{},
		&Fetch{CIDs: [][]byte{cidOf(1), cidOf(2)}},
		&Records{Records: [][]byte{{0xa0}, {1, 2, 3}}, More: true},
		&Records{},
		&Error{Code: CodeBadFrame, Reason: "ranges out of order"},
		&Error{Code: "x"},
		&CatchUp{Community: cidOf(9)},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		t.Run(f.Type().String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, f); err != nil {
				t.Fatal(err)
			}
			wire := bytes.Clone(buf.Bytes())
			got, err := ReadFrame(&buf, MaxRecordsFrame)
			if err != nil {
				t.Fatal(err)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left unread", buf.Len())
			}
			if got.Type() != f.Type() {
				t.Fatalf("type %s, want %s", got.Type(), f.Type())
			}
			var again bytes.Buffer
			if err := WriteFrame(&again, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), wire) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again.Bytes(), wire)
			}
		})
	}
}

func TestRangesDecodeToSameValues(t *testing.T) {
	b, err := EncodeFrame(&Reconcile{Ranges: sampleRanges()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := DecodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	got := f.(*Reconcile).Ranges
	want := sampleRanges()
	want[3].IDs = [][]byte{}
	for i := range want {
		if got[i].Upper.Compare(want[i].Upper) != 0 || got[i].Mode != want[i].Mode || got[i].Fingerprint != want[i].Fingerprint || len(got[i].IDs) != len(want[i].IDs) {
			t.Fatalf("range %d: got %+v, want %+v", i, got[i], want[i])
		}
		for j := range want[i].IDs {
			if !bytes.Equal(got[i].IDs[j], want[i].IDs[j]) {
				t.Fatalf("range %d ID %d differs", i, j)
			}
		}
	}
}

// The test vector of docs/protocol.md §8.
func TestGoldenReconcile(t *testing.T) {
	f := &Reconcile{Ranges: []Range{
		{Upper: Bound{Created: 1767225600000}, Mode: ModeSkip},
		{Upper: Bound{Created: 1767225600000, Prefix: []byte{0x80}}, Mode: ModeIDList, IDs: [][]byte{id(0xaa)}},
		{Upper: Infinity, Mode: ModeFingerprint, Fingerprint: Fingerprint{0: 0xf0, 15: 0x0f}},
	}}
	b, err := EncodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	want := "a2" + "6474797065" + "02" + "6672616e676573" + "83" +
		"84" + "1b0000019b76daa801" + "40" + "00" + "40" +
		"84" + "01" + "4180" + "02" + "5820" + strings.Repeat("aa", 32) +
		"84" + "00" + "40" + "01" + "50" + "f0" + strings.Repeat("00", 14) + "0f"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func TestRangeSizeIsExact(t *testing.T) {
	rs := sampleRanges()
	for _, n := range []int{0, 1, 23, 24, 255, 256, 1000} {
		rs := append(rs[:len(rs)-1:len(rs)-1], Range{Upper: Infinity, Mode: ModeIDList, IDs: make([][]byte, n)})
		for i := range rs[len(rs)-1].IDs {
			rs[len(rs)-1].IDs[i] = id(byte(i))
		}
		sum := 0
		var prev Bound
		for _, r := range rs {
			sum += RangeSize(prev, r)
			prev = r.Upper
		}
		for _, f := range []Frame{&Reconcile{Ranges: rs}, &Open{Community: cidOf(1), Ranges: rs}} {
			b, err := EncodeFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			over := len(b) - sum
			if over < 0 || over > RangesOverhead {
				t.Fatalf("%s with %d IDs: %d bytes, ranges %d, overhead %d > %d", f.Type(), n, len(b), sum, over, RangesOverhead)
			}
		}
	}
	// The overhead holds with the largest ranges array header too.
	many := make([]Range, MaxRanges)
	for i := range many {
		many[i] = Range{Upper: Bound{Created: uint64(i) + 1}, Mode: ModeSkip}
	}
	b, err := EncodeFrame(&Open{Community: cidOf(1), Ranges: many})
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	var prev Bound
	for _, r := range many {
		sum += RangeSize(prev, r)
		prev = r.Upper
	}
	if over := len(b) - sum; over > RangesOverhead {
		t.Fatalf("overhead %d > %d", over, RangesOverhead)
	}
}

// encodeRaw builds frames the encoder refuses to build.
func encodeRaw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := canon.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawRanges(rs ...wireRange) wireReconcile {
	return wireReconcile{Type: uint64(TypeReconcile), Ranges: rs}
}

func TestDecodeRejects(t *testing.T) {
	fp := make([]byte, FingerprintSize)
	type extra struct {
		Type uint64 `cbor:"type"`
		X    uint64 `cbor:"x"`
	}
	type withNull struct {
		Type   uint64 `cbor:"type"`
		Ranges *[]int `cbor:"ranges"`
	}
	type typeText struct {
		Type string `cbor:"type"`
	}
	tooMany := make([]wireRange, MaxRanges+1)
	for i := range tooMany {
		tooMany[i] = wireRange{Bound: 2}
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrBadFrame},
		{"not a map", []byte{0x01}, ErrBadFrame},
		{"no type", encodeRaw(t, map[string]int{"ranges": 1}), ErrBadFrame},
		{"type text", encodeRaw(t, typeText{"done"}), ErrBadFrame},
		{"unknown type", encodeRaw(t, wireDone{Type: 99}), ErrUnknownType},
		{"type zero", encodeRaw(t, wireDone{Type: 0}), ErrUnknownType},
		{"extra field", encodeRaw(t, extra{Type: uint64(TypeDone)}), ErrBadFrame},
		{"missing field", encodeRaw(t, wireDone{Type: uint64(TypeReconcile)}), ErrBadFrame},
		{"null field", encodeRaw(t, withNull{Type: uint64(TypeReconcile)}), ErrBadFrame},
		{"not canonical", []byte{0xa1, 0x64, 't', 'y', 'p', 'e', 0x18, 0x03}, ErrBadFrame},
		{"range as map", encodeRaw(t, map[string]any{"type": 2, "ranges": []any{map[string]int{"b": 1}}}), ErrBadFrame},
		{"range too short", encodeRaw(t, map[string]any{"type": 2, "ranges": []any{[]any{1, []byte{}, 0}}}), ErrBadFrame},
		{"range too long", encodeRaw(t, map[string]any{"type": 2, "ranges": []any{[]any{1, []byte{}, 0, []byte{}, 0}}}), ErrBadFrame},
		{"unknown mode", encodeRaw(t, rawRanges(wireRange{Bound: 1, Mode: 3})), ErrBadFrame},
		{"skip with payload", encodeRaw(t, rawRanges(wireRange{Bound: 1, Payload: []byte{1}})), ErrBadFrame},
		{"short fingerprint", encodeRaw(t, rawRanges(wireRange{Bound: 1, Mode: 1, Payload: fp[:15]})), ErrBadFrame},
		{"partial ID", encodeRaw(t, rawRanges(wireRange{Bound: 1, Mode: 2, Payload: make([]byte, 33)})), ErrBadFrame},
		{"bounds equal", encodeRaw(t, rawRanges(wireRange{Bound: 5}, wireRange{Bound: 1})), ErrBadFrame},
		{"prefix goes back", encodeRaw(t, rawRanges(wireRange{Bound: 5, Prefix: []byte{2}}, wireRange{Bound: 1, Prefix: []byte{1}})), ErrBadFrame},
		{"after infinity", encodeRaw(t, rawRanges(wireRange{Bound: 0}, wireRange{Bound: 1})), ErrBadFrame},
		{"infinity with prefix", encodeRaw(t, rawRanges(wireRange{Bound: 0, Prefix: []byte{1}})), ErrBadFrame},
		{"prefix ends in zero", encodeRaw(t, rawRanges(wireRange{Bound: 1, Prefix: []byte{1, 0}})), ErrBadFrame},
		{"prefix too long", encodeRaw(t, rawRanges(wireRange{Bound: 1, Prefix: bytes.Repeat([]byte{1}, 33)})), ErrBadFrame},
		{"bound overflows", encodeRaw(t, rawRanges(wireRange{Bound: 10}, wireRange{Bound: math.MaxUint64})), ErrBadFrame},
		{"infinity as delta", encodeRaw(t, rawRanges(wireRange{Bound: 2}, wireRange{Bound: math.MaxUint64})), ErrBadFrame},
		{"too many ranges", encodeRaw(t, map[string]any{"type": 2, "ranges": tooMany}), ErrBadFrame},
		{"open bad community", encodeRaw(t, wireOpen{Type: 1, Community: []byte{1, 2}, Ranges: []wireRange{}}), ErrBadFrame},
		{"fetch none", encodeRaw(t, wireFetch{Type: 4, Cids: [][]byte{}}), ErrBadFrame},
		{"fetch too many", encodeRaw(t, wireFetch{Type: 4, Cids: manyCIDs(MaxFetchBatch + 1)}), ErrBadFrame},
		{"fetch twice", encodeRaw(t, wireFetch{Type: 4, Cids: [][]byte{cidOf(1), cidOf(1)}}), ErrBadFrame},
		{"fetch bad CID", encodeRaw(t, wireFetch{Type: 4, Cids: [][]byte{id(1)}}), ErrBadFrame},
		{"records more but none", encodeRaw(t, wireRecords{Type: 5, More: true, Records: [][]byte{}}), ErrBadFrame},
		{"records empty record", encodeRaw(t, wireRecords{Type: 5, Records: [][]byte{{}}}), ErrBadFrame},
		{"records too many", encodeRaw(t, wireRecords{Type: 5, Records: manyCIDs(MaxFetchBatch + 1)}), ErrBadFrame},
		{"records record too large", encodeRaw(t, wireRecords{Type: 5, Records: [][]byte{make([]byte, maxRecordSize+1)}}), ErrBadFrame},
		{"error no code", encodeRaw(t, wireError{Type: 6}), ErrBadFrame},
		{"error code chars", encodeRaw(t, wireError{Type: 6, Code: "Bad Frame"}), ErrBadFrame},
		{"error code long", encodeRaw(t, wireError{Type: 6, Code: strings.Repeat("a", MaxCodeLength+1)}), ErrBadFrame},
		{"error reason long", encodeRaw(t, wireError{Type: 6, Code: "x", Reason: strings.Repeat("a", MaxReasonLength+1)}), ErrBadFrame},
		{"fetch over frame limit", encodeRaw(t, wireError{Type: 6, Code: "x", Reason: strings.Repeat("a", MaxFrameSize)}), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeFrame(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeFrame = %v, %v; want %v", f, err, tt.want)
			}
		})
	}
}

func manyCIDs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		c, _ := CIDFromID(append(bytes.Repeat([]byte{0}, IDSize-2), byte(i>>8), byte(i)))
		out[i] = c
	}
	return out
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
	}{
		{"nil", nil},
		{"open without community", &Open{}},
		{"out of order", &Reconcile{Ranges: []Range{{Upper: Bound{Created: 2}}, {Upper: Bound{Created: 1}}}}},
		{"skip with fingerprint", &Reconcile{Ranges: []Range{{Upper: Infinity, Fingerprint: Fingerprint{1}}}}},
		{"fingerprint with IDs", &Reconcile{Ranges: []Range{{Upper: Infinity, Mode: ModeFingerprint, IDs: [][]byte{}}}}},
		{"short ID", &Reconcile{Ranges: []Range{{Upper: Infinity, Mode: ModeIDList, IDs: [][]byte{{1}}}}}},
		{"fetch nothing", &Fetch{}},
		{"records too large", &Records{Records: [][]byte{make([]byte, maxRecordSize+1)}}},
		{"error without code", &Error{Reason: "x"}},
		{"ranges over frame limit", &Reconcile{Ranges: []Range{{Upper: Infinity, Mode: ModeIDList, IDs: make2048IDs()}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteFrame(io.Discard, tt.f); err == nil {
				t.Fatal("WriteFrame accepted a frame a peer would reject")
			}
		})
	}
}

func make2048IDs() [][]byte {
	ids := make([][]byte, MaxFrameSize/IDSize)
	for i := range ids {
		ids[i] = id(1)
	}
	return ids
}

// failReader fails the test if the frame body is read: the length alone must
// be enough to refuse a frame.
type failReader struct {
	t      *testing.T
	prefix []byte
}

func (r *failReader) Read(p []byte) (int, error) {
	if len(r.prefix) == 0 {
		r.t.Fatal("ReadFrame read past an oversized length prefix")
	}
	n := copy(p, r.prefix)
	r.prefix = r.prefix[n:]
	return n, nil
}

func TestReadFrameLimits(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1
	if _, err := ReadFrame(&failReader{t: t, prefix: huge}, MaxFrameSize); !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, ErrBadFrame) {
		t.Fatalf("huge length: %v", err)
	}
	over := []byte{0x81, 0x80, 0x04} // MaxFrameSize+1
	if _, err := ReadFrame(&failReader{t: t, prefix: over}, MaxFrameSize); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("limit+1: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(over), math.MaxInt); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("max above MaxRecordsFrame should lower to it and accept MaxFrameSize+1: %v", err)
	}

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"clean EOF", nil, io.EOF},
		{"EOF in length", []byte{0x80}, io.ErrUnexpectedEOF},
		{"EOF in body", []byte{0x05, 0xa0}, io.ErrUnexpectedEOF},
		{"empty frame", []byte{0x00}, ErrBadFrame},
		{"length not minimal", []byte{0x81, 0x00, 0xa0}, ErrBadFrame},
		{"length overflow", bytes.Repeat([]byte{0xff}, 10), ErrBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in), MaxFrameSize)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadFrame = %v, want %v", err, tt.want)
			}
			if tt.want == io.EOF && err != io.EOF {
				t.Fatalf("clean EOF must be io.EOF itself, got %v", err)
			}
		})
	}

	// A frame other than Records is held to MaxFrameSize whatever max is.
	big, err := canon.Marshal(wireError{Type: 6, Code: "x", Reason: strings.Repeat("a", MaxFrameSize)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.Write(append(varintBytes(len(big)), big...))
	if _, err := ReadFrame(&buf, MaxRecordsFrame); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized error frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{1, 0xa0}), 0); err == nil {
		t.Fatal("max 0 accepted")
	}
}

func varintBytes(n int) []byte {
	var out []byte
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}

// onlyReader hides ReadByte, like a libp2p stream.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestReadFrameLeavesNextFrame(t *testing.T) {
	var buf bytes.Buffer
	for _, f := range sampleFrames() {
		if err := WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	r := onlyReader{&buf}
	for i, want := range sampleFrames() {
		got, err := ReadFrame(r, MaxRecordsFrame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Type() != want.Type() {
			t.Fatalf("frame %d: %s, want %s", i, got.Type(), want.Type())
		}
	}
	if _, err := ReadFrame(r, MaxFrameSize); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestSplitRecords(t *testing.T) {
	rec := func(n int) []byte { return bytes.Repeat([]byte{1}, n) }
	tests := []struct {
		name    string
		records [][]byte
		frames  int
	}{
		{"none", nil, 1},
		{"one", [][]byte{rec(10)}, 1},
		{"largest records", repeat(rec(maxRecordSize), MaxFetchBatch), (MaxFetchBatch + 14) / 15}, // 15 fit in 1 MiB
		{"small ones", repeat(rec(100), MaxFetchBatch), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, err := SplitRecords(tt.records)
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != tt.frames {
				t.Fatalf("%d frames, want %d", len(frames), tt.frames)
			}
			var all [][]byte
			for i, f := range frames {
				if f.More != (i < len(frames)-1) {
					t.Fatalf("frame %d: more = %v", i, f.More)
				}
				b, err := EncodeFrame(f)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if len(b) > MaxRecordsFrame {
					t.Fatalf("frame %d: %d bytes", i, len(b))
				}
				all = append(all, f.Records...)
			}
			if len(all) != len(tt.records) || (len(all) > 0 && !reflect.DeepEqual(all, tt.records)) {
				t.Fatal("records lost or reordered")
			}
		})
	}
	if _, err := SplitRecords(repeat(rec(1), MaxFetchBatch+1)); err == nil {
		t.Fatal("too many records accepted")
	}
	if _, err := SplitRecords([][]byte{rec(maxRecordSize + 1)}); err == nil {
		t.Fatal("oversized record accepted")
	}
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestFingerprintOf(t *testing.T) {
	var zero [32]byte
	a, b := FingerprintOf(&zero, 0), FingerprintOf(&zero, 1)
	if a == b {
		t.Fatal("count does not change the fingerprint")
	}
	// SHA-256(32 zero bytes || 0x00)[:16], computed independently.
	if got := hex.EncodeToString(a[:]); got != "7f9c9e31ac8256ca2f258583df262dbc" {
		t.Fatalf("FingerprintOf(0, 0) = %s", got)
	}
}

func TestCIDConversion(t *testing.T) {
	c := cidOf(7)
	got, err := IDFromCID(c)
	if err != nil || !bytes.Equal(got, id(7)) {
		t.Fatalf("IDFromCID = %x, %v", got, err)
	}
	for _, bad := range [][]byte{nil, id(7), append([]byte{0x01, 0x55, 0x12, 0x20}, id(7)...), append(c, 0)} {
		if _, err := IDFromCID(bad); !errors.Is(err, ErrBadFrame) {
			t.Fatalf("IDFromCID(%x) = %v", bad, err)
		}
	}
	if _, err := CIDFromID(c); err == nil {
		t.Fatal("CIDFromID accepted a CID")
	}
}

func TestBoundOrder(t *testing.T) {
	d := id(0x10)
	tests := []struct {
		b     Bound
		below bool
	}{
		{Bound{Created: 5}, false},
		{Bound{Created: 6}, true},
		{Bound{Created: 4}, false},
		{Bound{Created: 5, Prefix: []byte{0x10}}, false},
		{Bound{Created: 5, Prefix: []byte{0x10, 0x10, 0x11}}, true},
		{Bound{Created: 5, Prefix: []byte{0x11}}, true},
		{Bound{Created: 5, Prefix: id(0x10)}, false},
		{Infinity, true},
	}
	for _, tt := range tests {
		if got := tt.b.Below(5, d); got != tt.below {
			t.Errorf("%+v.Below(5, 10..) = %v", tt.b, got)
		}
	}
	if (Bound{Created: 1, Prefix: []byte{1}}).Compare(Bound{Created: 1, Prefix: []byte{1, 1}}) != -1 {
		t.Error("a prefix sorts before its extension")
	}
	if Infinity.Compare(Bound{Created: math.MaxUint64 - 1, Prefix: id(0xff)}) != 1 {
		t.Error("infinity is not last")
	}
}
