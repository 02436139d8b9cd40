package registry

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Key layout.
//
// The registry shares the node's badger with other subsystems, which use
// printable text prefixes ("communities/", ...). The registry owns every key
// whose first byte is below 0x20; the first byte names the family.
//
// Integers are big-endian, so byte order is numeric order and an index scan
// is a time-ordered scan. Record and community IDs are always 36-byte
// CIDv1 dag-cbor sha2-256 and authors 38-byte Ed25519 peer IDs (record.Decode
// enforces both), so they need no length prefix; kind and subject strings
// carry one, so that a scan for subject "skill:a" never matches "skill:ab".
// created is the record's creation time in unix ms (> 0, so uint64 is exact).
//
//	family  key                                                    value
//	0x00    0x00 "v"                                               schema version (1 byte)
//	0x01    0x01 cid                                               the encoded record
//	0x02    0x02 community len:u8 kind created:u64 cid             empty (by kind)
//	0x03    0x03 community author created:u64 cid                  empty (by author)
//	0x04    0x04 community len:u16 subject created:u64 cid         empty (by subject)
//	0x05    0x05 community created:u64 cid                         empty (by time: reconciliation)
//	0x06    0x06 target-cid                                        created:u64 revocation-cid (revoked by)
//	0x07    0x07 community                                         record count:u64
//
// The subject of an attestation is "type:id" (body.Subject.String); the
// subject of a revocation is its target's record ID in text form; the
// subject of a feedback is "receipt:<receipt CID>", the same key an
// attestation about that receipt has. A record
// and all its index entries are written in one badger transaction.
//
// When a target has several revocations, revoked-by names the one first in
// (created, CID) order, so every node that holds the same records agrees.
const (
	famMeta      byte = 0x00
	famRecord    byte = 0x01
	famByKind    byte = 0x02
	famByAuthor  byte = 0x03
	famBySubject byte = 0x04
	famByTime    byte = 0x05
	famRevokedBy byte = 0x06
	famCount     byte = 0x07

	schemaVersion = 1

	cidLen    = 36 // CIDv1 dag-cbor sha2-256
	authorLen = 38 // Ed25519 peer ID
	tailLen   = 8 + cidLen
	maxKind   = 255
	maxSubj   = 1<<16 - 1
)

var metaVersionKey = []byte{famMeta, 'v'}

func cidBytes(c cid.Cid) ([]byte, error) {
	b := c.Bytes()
	if len(b) != cidLen {
		return nil, fmt.Errorf("%w: a %d-byte ID is not a record or community ID", ErrStorage, len(b))
	}
	return b, nil
}

func recordKey(c []byte) []byte {
	return append([]byte{famRecord}, c...)
}

func revokedByKey(target []byte) []byte {
	return append([]byte{famRevokedBy}, target...)
}

func countKey(community []byte) []byte {
	return append([]byte{famCount}, community...)
}

// The prefixes below are the part of an index key before created:u64 cid.

func kindPrefix(community []byte, kind string) []byte {
	k := make([]byte, 0, 1+cidLen+1+len(kind)+tailLen)
	k = append(append(append(k, famByKind), community...), byte(len(kind)))
	return append(k, kind...)
}

func authorPrefix(community []byte, author peer.ID) []byte {
	k := make([]byte, 0, 1+cidLen+authorLen+tailLen)
	return append(append(append(k, famByAuthor), community...), author...)
}

func subjectPrefix(community []byte, subject string) []byte {
	k := make([]byte, 0, 1+cidLen+2+len(subject)+tailLen)
	k = append(append(k, famBySubject), community...)
	k = binary.BigEndian.AppendUint16(k, uint16(len(subject)))
	return append(k, subject...)
}

func timePrefix(community []byte) []byte {
	k := make([]byte, 0, 1+cidLen+tailLen)
	return append(append(k, famByTime), community...)
}

// indexKey appends created and the record ID to an index prefix. The prefix
// is copied, so one prefix can build many keys.
func indexKey(prefix []byte, created int64, id []byte) []byte {
	k := make([]byte, 0, len(prefix)+tailLen)
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(created))
	return append(k, id...)
}

// splitTail reads created and the record ID from an index key.
func splitTail(key []byte, prefixLen int) (created uint64, id []byte, ok bool) {
	if len(key) != prefixLen+tailLen {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(key[prefixLen:]), key[prefixLen+8:], true
}

// revokedByValue is created:u64 followed by the revocation's ID.
func revokedByValue(created int64, id []byte) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, tailLen), uint64(created))
	return append(v, id...)
}
