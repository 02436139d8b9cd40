package canon

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// CBOR major types.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// Valid reports whether data is exactly one CBOR item in Agora's canonical
// form:
//
//   - integer arguments and lengths in their shortest form;
//   - definite lengths only;
//   - map keys are text strings, unique, sorted length-first then bytewise;
//   - text is valid UTF-8;
//   - only integers (negative ones within int64), byte and text strings,
//     arrays, maps, false, true and null; no floats, tags, undefined or
//     other simple values;
//   - at most MaxDepth levels of nesting and MaxItems entries per container;
//   - no bytes after the item.
//
// It works on the bytes alone, so it also checks items carried as RawMessage
// that no Go type ever looked into.
func Valid(data []byte) error {
	c := checker{data: data}
	if err := c.item(0); err != nil {
		return err
	}
	if c.off != len(data) {
		return c.fail(ErrMalformed, "%d extra bytes after the item", len(data)-c.off)
	}
	return nil
}

type checker struct {
	data []byte
	off  int
}

func (c *checker) fail(kind error, format string, args ...any) error {
	return fmt.Errorf("canon: at byte %d: %s: %w", c.off, fmt.Sprintf(format, args...), kind)
}

func (c *checker) remaining() int { return len(c.data) - c.off }

// head reads an item's initial byte and argument, enforcing shortest form.
// Major type 7 is returned with its raw additional information and no
// argument, because its encodings are values rather than lengths.
func (c *checker) head() (major, info byte, arg uint64, err error) {
	if c.remaining() < 1 {
		return 0, 0, 0, c.fail(ErrMalformed, "unexpected end of data")
	}
	ib := c.data[c.off]
	major, info = ib>>5, ib&0x1f
	if major == majorSimple {
		c.off++
		return major, info, 0, nil
	}
	var n int
	switch {
	case info < 24:
		c.off++
		return major, info, uint64(info), nil
	case info == 24:
		n = 1
	case info == 25:
		n = 2
	case info == 26:
		n = 4
	case info == 27:
		n = 8
	case info == 31:
		if major == majorBytes || major == majorText || major == majorArray || major == majorMap {
			return 0, 0, 0, c.fail(ErrNotCanonical, "indefinite-length item")
		}
		return 0, 0, 0, c.fail(ErrMalformed, "indefinite length on major type %d", major)
	default:
		return 0, 0, 0, c.fail(ErrMalformed, "reserved additional information %d", info)
	}
	if c.remaining() < 1+n {
		return 0, 0, 0, c.fail(ErrMalformed, "unexpected end of data")
	}
	b := c.data[c.off+1 : c.off+1+n]
	var min uint64
	switch n {
	case 1:
		arg, min = uint64(b[0]), 24
	case 2:
		arg, min = uint64(binary.BigEndian.Uint16(b)), 1<<8
	case 4:
		arg, min = uint64(binary.BigEndian.Uint32(b)), 1<<16
	case 8:
		arg, min = binary.BigEndian.Uint64(b), 1<<32
	}
	if arg < min {
		return 0, 0, 0, c.fail(ErrNotCanonical, "argument %d not in shortest form", arg)
	}
	c.off += 1 + n
	return major, info, arg, nil
}

// item checks one item; depth counts the containers around it.
func (c *checker) item(depth int) error {
	start := c.off
	major, info, arg, err := c.head()
	if err != nil {
		return err
	}
	switch major {
	case majorUint:
		return nil
	case majorNegInt:
		// Keeps every integer representable as int64 or uint64 in Go, so
		// decoding into any never produces a big.Int that cannot re-encode.
		if arg > math.MaxInt64 {
			c.off = start
			return c.fail(ErrUnsupported, "negative integer below the int64 range")
		}
		return nil
	case majorBytes, majorText:
		_, err := c.str(major, arg, start)
		return err
	case majorArray, majorMap:
		if depth+1 > MaxDepth {
			c.off = start
			return c.fail(ErrMalformed, "nested deeper than %d levels", MaxDepth)
		}
		if arg > MaxItems {
			c.off = start
			return c.fail(ErrMalformed, "%d entries, more than the limit of %d", arg, MaxItems)
		}
		if major == majorArray {
			for i := uint64(0); i < arg; i++ {
				if err := c.item(depth + 1); err != nil {
					return err
				}
			}
			return nil
		}
		return c.mapBody(arg, depth+1)
	case majorTag:
		c.off = start
		return c.fail(ErrUnsupported, "tag %d", arg)
	default: // majorSimple
		switch info {
		case 20, 21, 22: // false, true, null
			return nil
		case 23:
			c.off = start
			return c.fail(ErrUnsupported, "undefined")
		case 25, 26, 27:
			c.off = start
			return c.fail(ErrUnsupported, "floating-point number")
		case 31:
			c.off = start
			return c.fail(ErrMalformed, "unexpected break")
		case 28, 29, 30:
			c.off = start
			return c.fail(ErrMalformed, "reserved additional information %d", info)
		default:
			c.off = start
			return c.fail(ErrUnsupported, "simple value")
		}
	}
}

// str consumes the payload of a byte or text string of length n.
func (c *checker) str(major byte, n uint64, start int) ([]byte, error) {
	if n > uint64(c.remaining()) {
		c.off = start
		return nil, c.fail(ErrMalformed, "string of %d bytes runs past the end of data", n)
	}
	s := c.data[c.off : c.off+int(n)]
	if major == majorText && !utf8.Valid(s) {
		c.off = start
		return nil, c.fail(ErrMalformed, "text is not valid UTF-8")
	}
	c.off += int(n)
	return s, nil
}

func (c *checker) mapBody(pairs uint64, depth int) error {
	var prev []byte
	for i := uint64(0); i < pairs; i++ {
		start := c.off
		major, _, arg, err := c.head()
		if err != nil {
			return err
		}
		if major != majorText {
			c.off = start
			return c.fail(ErrUnsupported, "map key of major type %d; keys must be text", major)
		}
		key, err := c.str(major, arg, start)
		if err != nil {
			return err
		}
		if i > 0 {
			switch cmp := compareKeys(prev, key); {
			case cmp == 0:
				c.off = start
				return c.fail(ErrMalformed, "duplicate map key %q", key)
			case cmp > 0:
				c.off = start
				return c.fail(ErrNotCanonical, "map key %q out of order", key)
			}
		}
		prev = key
		if err := c.item(depth); err != nil {
			return err
		}
	}
	return nil
}

// compareKeys orders map keys length-first, then bytewise, as DAG-CBOR does.
func compareKeys(a, b []byte) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}
