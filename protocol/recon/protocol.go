package recon

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/agora-p2p/agora/protocol/record"
)

// ProtocolID is the libp2p protocol of registry sync.
const ProtocolID = "/agora/sync/1.0.0"

// Limits. Both sides enforce them: a writer never produces a frame a reader
// would reject.
const (
	// MaxFrameSize bounds the encoded size (after the length prefix) of every
	// frame except Records. 64 KiB keeps a reconciliation round small enough
	// for a slow uplink while still carrying about 2,000 IDs.
	MaxFrameSize = 64 << 10
	// MaxRecordsFrame bounds the encoded size of a Records frame, and so the
	// bytes of records it carries. A single record (at most record.MaxSize)
	// always fits.
	MaxRecordsFrame = 1 << 20
	// MaxFetchBatch bounds the CIDs of one Fetch, and so the records of the
	// Records frames that answer it.
	MaxFetchBatch = 256
	// MaxRanges bounds the ranges of one Open or Reconcile frame.
	MaxRanges = 4096
	// MaxCodeLength and MaxReasonLength bound an Error frame's code and
	// reason, in bytes.
	MaxCodeLength   = 32
	MaxReasonLength = 256
)

// Sizes of the values the reconciliation exchanges.
const (
	// IDSize is the size of an item ID on the wire: the sha2-256 digest of
	// the record, i.e. its CID without the fixed CID prefix.
	IDSize = 32
	// CIDSize is the size of a record CID in binary form.
	CIDSize = 4 + IDSize
	// FingerprintSize is the size of a range fingerprint.
	FingerprintSize = 16
)

// cidPrefix starts every record CID: CIDv1, dag-cbor, sha2-256, 32 bytes.
// record.CID only produces this form, so the digest alone names a record.
var cidPrefix = []byte{0x01, 0x71, 0x12, 0x20} // CIDSize - IDSize bytes

// IDFromCID returns the wire ID of a record CID given in binary form: its
// sha2-256 digest. The result aliases c.
func IDFromCID(c []byte) ([]byte, error) {
	if err := checkCID(c); err != nil {
		return nil, err
	}
	return c[len(cidPrefix):], nil
}

// CIDFromID returns the binary CID of the record whose wire ID is id.
func CIDFromID(id []byte) ([]byte, error) {
	if len(id) != IDSize {
		return nil, fmt.Errorf("%w: an ID is %d bytes, want %d", ErrBadFrame, len(id), IDSize)
	}
	c := make([]byte, 0, CIDSize)
	return append(append(c, cidPrefix...), id...), nil
}

// checkCID accepts exactly the CIDs that records have (and communities,
// which are genesis records).
func checkCID(c []byte) error {
	if len(c) != CIDSize || !bytes.HasPrefix(c, cidPrefix) {
		return fmt.Errorf("%w: %d-byte CID is not a CIDv1 dag-cbor sha2-256 in binary form", ErrBadFrame, len(c))
	}
	return nil
}

// Fingerprint summarises the IDs of a range; see FingerprintOf.
type Fingerprint [FingerprintSize]byte

// FingerprintOf returns the fingerprint of a range of count items whose IDs,
// read as 256-bit little-endian unsigned integers, add up to sum modulo
// 2^256 (sum is given little-endian too):
//
//	SHA-256(sum || uvarint(count))[:16]
//
// Addition, unlike XOR, does not let pairs of equal IDs cancel out, and the
// hash keeps a peer from steering the value without finding preimages.
func FingerprintOf(sum *[32]byte, count uint64) Fingerprint {
	buf := make([]byte, 0, 32+binary.MaxVarintLen64)
	buf = binary.AppendUvarint(append(buf, sum[:]...), count)
	h := sha256.Sum256(buf)
	var fp Fingerprint
	copy(fp[:], h[:])
	return fp
}

// maxRecordSize is the largest record a Records frame may carry.
const maxRecordSize = record.MaxSize
