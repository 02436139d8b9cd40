package canon

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nested(n int) []byte {
	return append(bytes.Repeat([]byte{0x81}, n), 0x00)
}

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error // nil means valid
	}{
		{"uint small", "17", nil},
		{"uint one byte", "18 18", nil},
		{"uint two bytes", "19 0100", nil},
		{"uint max", "1b ffffffffffffffff", nil},
		{"negint", "20", nil},
		{"negint int64 min", "3b 7fffffffffffffff", nil},
		{"negint below int64", "3b 8000000000000000", ErrUnsupported},
		{"bytes", "43 010203", nil},
		{"text", "63 616263", nil},
		{"empty array", "80", nil},
		{"empty map", "a0", nil},
		{"false true null", "83 f4 f5 f6", nil},
		{"sorted keys", "a3 61 61 01 61 62 02 62 6161 03", nil},

		{"empty input", "", ErrMalformed},
		{"truncated arg", "19 01", ErrMalformed},
		{"truncated string", "43 0102", ErrMalformed},
		{"truncated array", "82 01", ErrMalformed},
		{"trailing bytes", "01 02", ErrMalformed},
		{"reserved info", "1c", ErrMalformed},
		{"lone break", "ff", ErrMalformed},
		{"invalid utf8", "62 c328", ErrMalformed},
		{"duplicate key", "a2 61 61 01 61 61 02", ErrMalformed},
		{"too many entries", "9a 00010001", ErrMalformed},

		{"uint not shortest 1", "18 17", ErrNotCanonical},
		{"uint not shortest 2", "19 00ff", ErrNotCanonical},
		{"uint not shortest 4", "1a 0000ffff", ErrNotCanonical},
		{"uint not shortest 8", "1b 00000000ffffffff", ErrNotCanonical},
		{"length not shortest", "58 01 00", ErrNotCanonical},
		{"indefinite bytes", "5f 41 00 ff", ErrNotCanonical},
		{"indefinite array", "9f ff", ErrNotCanonical},
		{"indefinite map", "bf ff", ErrNotCanonical},
		{"keys by bytes not length", "a2 62 6161 01 61 62 02", ErrNotCanonical},
		{"keys unsorted", "a2 61 62 01 61 61 02", ErrNotCanonical},

		{"float16", "f9 3c00", ErrUnsupported},
		{"float32", "fa 3f800000", ErrUnsupported},
		{"float64", "fb 3ff0000000000000", ErrUnsupported},
		{"nested float", "a1 61 61 fb 3ff0000000000000", ErrUnsupported},
		{"undefined", "f7", ErrUnsupported},
		{"simple value", "f0", ErrUnsupported},
		{"simple value 1 byte", "f8 20", ErrUnsupported},
		{"tag", "c1 01", ErrUnsupported},
		{"cid tag", "d8 2a 41 00", ErrUnsupported},
		{"int map key", "a1 01 02", ErrUnsupported},
		{"bytes map key", "a1 41 00 02", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Valid(mustHex(t, tt.in))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Valid = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Valid = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDepthLimitMatchesDecoder(t *testing.T) {
	var v any
	if err := Unmarshal(nested(MaxDepth), &v); err != nil {
		t.Fatalf("depth %d rejected: %v", MaxDepth, err)
	}
	if err := Unmarshal(nested(MaxDepth+1), &v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("depth %d: err = %v, want ErrMalformed", MaxDepth+1, err)
	}
	deep := any(0)
	for range MaxDepth + 1 {
		deep = []any{deep}
	}
	if _, err := Marshal(deep); err == nil {
		t.Fatal("Marshal accepted data nested too deep")
	}
}

type sample struct {
	Long  string            `cbor:"long_key"`
	A     int64             `cbor:"a"`
	BB    []byte            `cbor:"bb"`
	List  []string          `cbor:"list"`
	Attrs map[string]uint64 `cbor:"attrs"`
	Flag  bool              `cbor:"flag"`
	Opt   *int64            `cbor:"opt,omitempty"`
}

// sampleReordered has the same wire keys declared in another order; the
// encoding must not depend on Go field order.
type sampleReordered struct {
	Opt   *int64            `cbor:"opt,omitempty"`
	Flag  bool              `cbor:"flag"`
	List  []string          `cbor:"list"`
	BB    []byte            `cbor:"bb"`
	Attrs map[string]uint64 `cbor:"attrs"`
	A     int64             `cbor:"a"`
	Long  string            `cbor:"long_key"`
}

func TestMarshalDeterministic(t *testing.T) {
	s := sample{Long: "x", A: -3, BB: []byte{1}, List: []string{"p"}, Attrs: map[string]uint64{"zz": 1, "b": 2, "aaa": 3}, Flag: true}
	r := sampleReordered{Long: s.Long, A: s.A, BB: s.BB, List: s.List, Attrs: s.Attrs, Flag: s.Flag}
	b1, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("field order changed the encoding:\n%x\n%x", b1, b2)
	}
	// a, bb, flag, list, attrs{b, zz, aaa}, long_key: length-first.
	want := "a6" + "6161" + "22" + "626262" + "4101" + "64666c6167" + "f5" +
		"646c697374" + "816170" + "656174747273" + "a3" + "6162" + "02" + "627a7a" + "01" + "63616161" + "03" +
		"686c6f6e675f6b6579" + "6178"
	if got := hex.EncodeToString(b1); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	for i := 0; i < 20; i++ { // map iteration order is random in Go
		b, _ := Marshal(s)
		if !bytes.Equal(b, b1) {
			t.Fatal("encoding is not stable across calls")
		}
	}
}

func TestMarshalNilEqualsEmpty(t *testing.T) {
	a, err := Marshal(sample{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(sample{BB: []byte{}, List: []string{}, Attrs: map[string]uint64{}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("nil and empty containers encode differently:\n%x\n%x", a, b)
	}
}

func TestMarshalRejects(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		v    any
	}{
		{"float64", 1.5},
		{"float32", float32(2)},
		{"float zero", 0.0},
		{"nan", nan},
		{"inf", math.Inf(1)},
		{"float in struct", struct {
			X float64 `cbor:"x"`
		}{1}},
		{"float in any", map[string]any{"x": 0.5}},
		{"int map key", map[int]string{1: "a"}},
		{"bytes map key", map[[2]byte]string{{1, 2}: "a"}},
		{"non-canonical raw", RawMessage{0x18, 0x01}},
		{"float raw", RawMessage{0xf9, 0x3c, 0x00}},
		{"channel", make(chan int)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := Marshal(tt.v); err == nil {
				t.Fatalf("Marshal = %x, want error", b)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	type target struct {
		A int64  `cbor:"a"`
		B string `cbor:"b"`
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"unknown field", "a2 61 61 01 61 63 02", ErrMalformed},
		{"wrong type", "a1 61 61 61 78", ErrMalformed},
		{"overflow", "a1 61 61 1b ffffffffffffffff", ErrMalformed},
		{"float into int", "a1 61 61 f9 3c00", ErrUnsupported},
		{"trailing", "a1 61 61 01 00", ErrMalformed},
		{"duplicate", "a2 61 61 01 61 61 02", ErrMalformed},
		{"not canonical", "a1 61 61 18 01", ErrNotCanonical},
		{"case mismatch", "a1 61 41 01", ErrMalformed},
		{"null field is fine", "a1 61 61 f6", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v target
			err := Unmarshal(mustHex(t, tt.in), &v)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Unmarshal = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	n := int64(7)
	in := sample{Long: "héllo", A: math.MinInt64, BB: []byte{0, 255}, List: []string{"a", ""}, Attrs: map[string]uint64{"k": math.MaxUint64}, Flag: true, Opt: &n}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out sample
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	again, err := Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Fatal("re-encoding changed the bytes")
	}
}

func TestRawMessagePassesThrough(t *testing.T) {
	type env struct {
		Body RawMessage `cbor:"body"`
	}
	inner, err := Marshal(map[string]int{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(env{Body: inner})
	if err != nil {
		t.Fatal(err)
	}
	var out env
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Body, inner) {
		t.Fatalf("body = %x, want %x", out.Body, inner)
	}
}

// Decoding canonical data into any and encoding it again must reproduce the
// input exactly; that is what makes a CID a name for a value.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		"00", "17", "1818", "20", "3b7fffffffffffffff", "40", "60", "80", "a0", "f4", "f5", "f6",
		"a3616101616202626161 03", "83 f4 f5 f6", "a1616182 01 a1616240",
		"1817", "f93c00", "c101", "a10102", "9fff", "a2616201616102", "62c328",
		"a161611bffffffffffffffff", "81818181818181818181818181818181 00",
	} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		errValid := Valid(data)
		var v any
		err := Unmarshal(data, &v)
		if errValid != nil {
			if err == nil {
				t.Fatalf("Unmarshal accepted data Valid rejected: %v", errValid)
			}
			return
		}
		if err != nil {
			t.Fatalf("Valid accepted data Unmarshal rejected: %v", err)
		}
		out, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal of decoded value: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip changed bytes:\n in %x\nout %x", data, out)
		}
	})
}

// Typed targets exercise struct field matching and conversions.
func FuzzUnmarshalStruct(f *testing.F) {
	n := int64(1)
	seed, err := Marshal(sample{Long: "x", A: 1, BB: []byte{1}, List: []string{"a"}, Attrs: map[string]uint64{"k": 1}, Opt: &n})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		if err := Unmarshal(data, &s); err != nil {
			return
		}
		if _, err := Marshal(s); err != nil {
			t.Fatalf("Marshal of decoded struct: %v", err)
		}
	})
}

func TestMarshalRejectsTime(t *testing.T) {
	if b, err := Marshal(struct{ T time.Time }{time.Now()}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Marshal(time.Time) = %x, %v; want ErrUnsupported", b, err)
	}
}

func TestUnmarshalRejectsArrays(t *testing.T) {
	data := mustHex(t, "a1 61 62 42 0102")
	tests := []struct {
		name string
		v    any
	}{
		{"byte array", &struct {
			B [4]byte `cbor:"b"`
		}{}},
		{"nested", &struct {
			B []struct {
				H [2]int `cbor:"h"`
			} `cbor:"b"`
		}{}},
		{"map value", &map[string][2]byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Unmarshal(data, tt.v); err == nil || !strings.Contains(err.Error(), "Go arrays") {
				t.Fatalf("Unmarshal = %v, want an error about Go arrays", err)
			}
		})
	}
}

type recursive struct {
	Name     string      `cbor:"name"`
	Children []recursive `cbor:"children"`
}

func TestUnmarshalRecursiveType(t *testing.T) {
	in := recursive{Name: "a", Children: []recursive{{Name: "b", Children: []recursive{}}}}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out recursive
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Children[0].Name != "b" {
		t.Fatalf("out = %+v", out)
	}
}

// peer.ID and cid.Cid go on the wire as byte strings via their binary
// marshalers, and decode with validation.
func TestLibp2pTypesAsBytes(t *testing.T) {
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	type ids struct {
		P peer.ID `cbor:"p"`
		C cid.Cid `cbor:"c"`
	}
	b, err := Marshal(ids{P: id, C: c})
	if err != nil {
		t.Fatal(err)
	}
	var out ids
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.P != id || out.C != c {
		t.Fatalf("out = %+v", out)
	}
	var asBytes struct {
		P []byte `cbor:"p"`
		C []byte `cbor:"c"`
	}
	if err := Unmarshal(b, &asBytes); err != nil {
		t.Fatal(err)
	}
	if string(asBytes.P) != string(id) || !bytes.Equal(asBytes.C, c.Bytes()) {
		t.Fatal("not encoded as their binary forms")
	}
	bad := mustHex(t, "a2 6163 43 010203 6170 43 010203")
	if err := Unmarshal(bad, &out); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Unmarshal of invalid IDs = %v, want ErrMalformed", err)
	}
}
