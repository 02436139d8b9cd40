package recon

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := EncodeFrame(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x64, 't', 'y', 'p', 'e', 0x03})
	f.Add([]byte{})
}

// Anything DecodeFrame accepts encodes back to the same bytes, and nothing
// makes it panic.
func FuzzDecodeFrame(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeFrame(data)
		if err != nil {
			if fr != nil {
				t.Fatal("frame and error both returned")
			}
			if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		out, err := EncodeFrame(fr)
		if err != nil {
			t.Fatalf("EncodeFrame of decoded %s: %v", fr.Type(), err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("round trip changed bytes:\n in %x\nout %x", data, out)
		}
	})
}

// ReadFrame on arbitrary streams: no panic, and a frame it returns is
// exactly what it consumed.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range sampleFrames() {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, fr); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), uint32(MaxFrameSize))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, uint32(MaxFrameSize))
	f.Add([]byte{0x81, 0x00}, uint32(10))
	f.Fuzz(func(t *testing.T, data []byte, max uint32) {
		r := bytes.NewReader(data)
		fr, err := ReadFrame(onlyReader{r}, int(max%(2*MaxRecordsFrame)))
		if err != nil {
			if fr != nil {
				t.Fatal("frame and error both returned")
			}
			if err == io.EOF && len(data) != 0 {
				t.Fatal("io.EOF after consuming bytes")
			}
			return
		}
		consumed := data[:len(data)-r.Len()]
		var buf bytes.Buffer
		if err := WriteFrame(&buf, fr); err != nil {
			t.Fatalf("WriteFrame of read %s: %v", fr.Type(), err)
		}
		if !bytes.Equal(buf.Bytes(), consumed) {
			t.Fatalf("round trip changed bytes:\n in %x\nout %x", consumed, buf.Bytes())
		}
	})
}
