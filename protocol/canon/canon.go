package canon

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Limits shared by the encoder check, the decoder and Valid, so that
// anything Marshal produces is accepted by Unmarshal on every node.
const (
	// MaxDepth is the deepest nesting of arrays and maps; a top-level map is
	// depth 1. Bounding it bounds the decoder's stack on hostile input.
	MaxDepth = 16
	// MaxItems bounds the elements of one array or the pairs of one map.
	MaxItems = 65536
)

var (
	// ErrMalformed reports data that is not a single well-formed CBOR item, or
	// that does not fit the Go value it is decoded into.
	ErrMalformed = errors.New("the data is not well-formed Agora CBOR")
	// ErrNotCanonical reports well-formed CBOR that is not in the one
	// canonical form (shortest lengths, sorted map keys, no indefinite lengths).
	ErrNotCanonical = errors.New("the data is not in canonical CBOR form")
	// ErrUnsupported reports CBOR features Agora never uses in its data model:
	// floats, tags, undefined, simple values and non-text map keys.
	ErrUnsupported = errors.New("the data uses a CBOR feature Agora does not allow (floats, tags, undefined or non-text map keys); use integers, e.g. thousandths, instead of floats")
)

// RawMessage is an encoded CBOR item carried without decoding, e.g. a record
// body. It is copied verbatim by Marshal and then checked like any other data.
type RawMessage = cbor.RawMessage

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{
		// Length-first is what DAG-CBOR requires; for text keys it coincides
		// with RFC 8949 bytewise order.
		Sort:          cbor.SortLengthFirst,
		ShortestFloat: cbor.ShortestFloatNone,
		NaNConvert:    cbor.NaNConvertReject,
		InfConvert:    cbor.InfConvertReject,
		BigIntConvert: cbor.BigIntConvertReject,
		IndefLength:   cbor.IndefLengthForbidden,
		// Tags are allowed here only so that time.Time encodes as a tag,
		// which Valid then rejects: times are unix milliseconds in int64.
		TagsMd:  cbor.TagsAllowed,
		TimeTag: cbor.EncTagRequired,
		// One encoding per value: a nil slice and an empty one must not sign
		// differently.
		NilContainers: cbor.NilContainerAsEmpty,
		String:        cbor.StringToTextString,
		FieldName:     cbor.FieldNameToTextString,
		ByteArray:     cbor.ByteArrayToByteSlice,
		// peer.ID and cid.Cid are BinaryMarshalers; this puts them on the
		// wire as byte strings rather than as (invalid UTF-8) text.
		BinaryMarshaler: cbor.BinaryMarshalerByteString,
	}.EncMode()
	if err != nil {
		panic(fmt.Sprintf("canon: encoder options: %v", err))
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		TimeTag:           cbor.DecTagRequired,
		MaxNestedLevels:   MaxDepth,
		MaxArrayElements:  MaxItems,
		MaxMapPairs:       MaxItems,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		IntDec:            cbor.IntDecConvertNone,
		MapKeyByteString:  cbor.MapKeyByteStringForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		DefaultMapType:    reflect.TypeOf(map[string]any(nil)),
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		NaN:               cbor.NaNDecodeForbidden,
		Inf:               cbor.InfDecodeForbidden,
		BignumTag:         cbor.BignumTagForbidden,
		BinaryUnmarshaler: cbor.BinaryUnmarshalerByteString,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("canon: decoder options: %v", err))
	}
}

// Marshal returns the canonical encoding of v. It fails if v would encode to
// anything Unmarshal rejects, notably floats, so signed data can never carry
// a value that another node decodes differently.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canon: encode %T: %w: %w", v, ErrUnsupported, err)
	}
	if err := Valid(b); err != nil {
		return nil, fmt.Errorf("canon: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes data into v. data must be exactly one item in canonical
// form (see Valid), and every map key must match a field of the target
// struct: unknown fields are errors, not silently dropped.
//
// Fields missing from data are left untouched (zero in a fresh value), so a
// schema can gain fields and still read data written before them.
func Unmarshal(data []byte, v any) error {
	if err := checkType(reflect.TypeOf(v)); err != nil {
		return err
	}
	if err := Valid(data); err != nil {
		return err
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("canon: decode into %T: %w: %w", v, ErrMalformed, err)
	}
	return nil
}

var checkedTypes sync.Map // reflect.Type -> error (nil when fine)

// checkType refuses targets containing Go arrays: the decoder fills an array
// from a shorter or longer CBOR array or byte string without complaint, so a
// 31-byte hash would decode into a [32]byte. Use a slice and check its
// length instead.
func checkType(t reflect.Type) error {
	if t == nil {
		return nil
	}
	if err, ok := checkedTypes.Load(t); ok {
		if err == nil {
			return nil
		}
		return err.(error)
	}
	err := walkType(t, map[reflect.Type]bool{})
	checkedTypes.Store(t, err)
	return err
}

var (
	unmarshalerType       = reflect.TypeFor[cbor.Unmarshaler]()
	binaryUnmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

func walkType(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	pt := reflect.PointerTo(t)
	if t.Kind() != reflect.Pointer && (pt.Implements(unmarshalerType) || pt.Implements(binaryUnmarshalerType)) {
		return nil // decodes itself, e.g. cid.Cid, peer.ID, RawMessage
	}
	switch t.Kind() {
	case reflect.Array:
		return fmt.Errorf("canon: cannot decode into %s: Go arrays are filled without a length check; use a slice and check its length", t)
	case reflect.Pointer, reflect.Slice:
		return walkType(t.Elem(), seen)
	case reflect.Map:
		if err := walkType(t.Key(), seen); err != nil {
			return err
		}
		return walkType(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			if err := walkType(f.Type, seen); err != nil {
				return fmt.Errorf("%w (field %s.%s)", err, t, f.Name)
			}
		}
	}
	return nil
}
