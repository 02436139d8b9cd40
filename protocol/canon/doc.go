// Package canon is the one CBOR codec of Agora: every byte that is signed,
// hashed or sent between nodes goes through Marshal and Unmarshal here.
//
// The encoding is deterministic and a strict subset of DAG-CBOR, so one value
// has exactly one encoding and one CID. Unmarshal accepts only that encoding,
// which keeps every decoder in the project as strict as the encoder.
//
// canon owns encoding rules only. It must not know about records, kinds or
// any other Agora type, and it must not do I/O.
package canon
