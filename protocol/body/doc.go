// Package body defines the bodies of record kinds: one versioned Go type per
// kind, its canonical CBOR form, its limits and its validation.
//
// A body is checked on its own (Decode) and against its envelope
// (DecodeRecord, which also knows the record's creation time). Decoding is
// as strict as encoding: a body has exactly one accepted encoding.
//
// body must not look anything up, touch storage or know who is a member of
// what: rules that need other records (a revocation's target exists and has
// the same author) belong to the registry.
package body
