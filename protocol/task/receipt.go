package task

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// ReceiptPrefix starts the bytes an executor signs for a receipt.
const ReceiptPrefix = "agora/receipt/v1\x00"

// ReceiptVersion is the receipt format this package writes and reads.
const ReceiptVersion = 1

// MaxReceipt bounds an encoded receipt.
const MaxReceipt = 2 << 10

// Receipt statuses.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// ErrBadReceipt is any receipt that does not decode or verify.
var ErrBadReceipt = errors.New("task: bad receipt")

// Receipt is the executor's signed statement that it ran a task: feedback
// and audits name receipts, so nobody can rate a task that never happened.
// Input and Output are sha2-256 multihashes of the exact JSON bytes sent and
// returned (Output empty for a failure).
type Receipt struct {
	V         uint64
	Task      string
	Community cid.Cid
	Requester peer.ID
	Executor  peer.ID
	Agent     string
	Skill     string
	Input     []byte
	Output    []byte
	Status    string
	Started   int64 // unix ms
	Ended     int64 // unix ms
	Sig       []byte

	raw []byte
}

type wireReceipt struct {
	V         uint64 `cbor:"v"`
	Sig       []byte `cbor:"sig,omitempty"`
	Task      string `cbor:"task"`
	Agent     string `cbor:"agent"`
	Ended     int64  `cbor:"ended"`
	Input     []byte `cbor:"input"`
	Skill     string `cbor:"skill"`
	Output    []byte `cbor:"output"`
	Status    string `cbor:"status"`
	Started   int64  `cbor:"started"`
	Executor  []byte `cbor:"executor"`
	Community []byte `cbor:"community"`
	Requester []byte `cbor:"requester"`
}

// Hash is the multihash a receipt records for a payload.
func Hash(payload []byte) []byte {
	sum := sha256.Sum256(payload)
	out, _ := mh.Encode(sum[:], mh.SHA2_256)
	return out
}

func (r *Receipt) toWire() wireReceipt {
	return wireReceipt{
		V: r.V, Sig: r.Sig, Task: r.Task, Agent: r.Agent, Ended: r.Ended, Input: r.Input,
		Skill: r.Skill, Output: r.Output, Status: r.Status, Started: r.Started,
		Executor: []byte(r.Executor), Community: r.Community.Bytes(), Requester: []byte(r.Requester),
	}
}

func (r *Receipt) check() error {
	badf := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadReceipt, fmt.Sprintf(format, args...))
	}
	switch {
	case r.V != ReceiptVersion:
		return badf("version %d, this node reads %d", r.V, ReceiptVersion)
	case !ValidID(r.Task):
		return badf("task ID %q", clip(r.Task))
	case !r.Community.Defined():
		return badf("no community")
	case !ValidSkill(r.Skill):
		return badf("skill %q", clip(r.Skill))
	case r.Agent == "" || len(r.Agent) > 128:
		return badf("agent name of %d bytes", len(r.Agent))
	case r.Status != StatusCompleted && r.Status != StatusFailed:
		return badf("status %q", clip(r.Status))
	case r.Started <= 0 || r.Ended < r.Started:
		return badf("times %d..%d", r.Started, r.Ended)
	}
	if _, err := mh.Cast(r.Input); err != nil {
		return badf("input hash: %v", err)
	}
	if r.Status == StatusCompleted {
		if _, err := mh.Cast(r.Output); err != nil {
			return badf("output hash: %v", err)
		}
	} else if len(r.Output) != 0 {
		if _, err := mh.Cast(r.Output); err != nil {
			return badf("output hash: %v", err)
		}
	}
	if _, err := record.AuthorKey(r.Executor); err != nil {
		return badf("executor: %v", err)
	}
	if err := r.Requester.Validate(); err != nil {
		return badf("requester: %v", err)
	}
	return nil
}

// sigEntry is how the "sig" key and a 64-byte signature's head encode: the
// key is the second of a receipt's map in canonical order, after "v".
const sigEntry = "\x63sig\x58\x40"

// The heads of a receipt's map with and without "sig" (13 and 12 pairs),
// and the length of the "v" pair for a version under 24.
const (
	signedHead   = 0xad
	unsignedHead = 0xac
	vPairLen     = 3
)

// unsignedFrom returns the signing input of a receipt from enc, its
// canonical encoding: the same map with the "sig" pair cut out. ok is
// false when enc is not laid out as expected, and the caller encodes the
// receipt again instead (signingInput).
func unsignedFrom(enc []byte) (msg []byte, ok bool) {
	at := 1 + vPairLen
	if len(enc) < at+len(sigEntry)+ed25519.SignatureSize || enc[0] != signedHead || enc[1] != 0x61 || enc[2] != 'v' || enc[3] >= 0x18 ||
		string(enc[at:at+len(sigEntry)]) != sigEntry {
		return nil, false
	}
	rest := enc[at+len(sigEntry)+ed25519.SignatureSize:]
	msg = make([]byte, 0, len(ReceiptPrefix)+1+vPairLen+len(rest))
	msg = append(append(append(append(msg, ReceiptPrefix...), unsignedHead), enc[1:at]...), rest...)
	return msg, true
}

// signedFrom returns the encoding of a receipt from its signing input msg
// (as signingInput makes it) and its signature: the "sig" pair put in.
func signedFrom(msg, sig []byte) (enc []byte, ok bool) {
	m := msg[len(ReceiptPrefix):]
	if len(sig) != ed25519.SignatureSize || len(m) < 1+vPairLen || m[0] != unsignedHead || m[1] != 0x61 || m[2] != 'v' || m[3] >= 0x18 {
		return nil, false
	}
	enc = make([]byte, 0, len(m)+len(sigEntry)+len(sig))
	enc = append(append(enc, signedHead), m[1:1+vPairLen]...)
	enc = append(append(append(enc, sigEntry...), sig...), m[1+vPairLen:]...)
	return enc, true
}

func (r *Receipt) signingInput() ([]byte, error) {
	w := r.toWire()
	w.Sig = nil
	b, err := canon.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	return append([]byte(ReceiptPrefix), b...), nil
}

// Sign fills r.V, r.Executor and r.Sig with key (Ed25519) and returns the
// encoding, which is what Result and Failed frames carry.
func (r *Receipt) Sign(key crypto.PrivKey) ([]byte, error) {
	s, err := NewSigner(key)
	if err != nil {
		return nil, err
	}
	return s.Sign(r)
}

// Signer signs receipts with one key, whose peer ID it works out once (an
// executor signs a receipt for every task).
type Signer struct {
	key crypto.PrivKey
	id  peer.ID
}

// NewSigner returns a Signer of key, which must be Ed25519.
func NewSigner(key crypto.PrivKey) (*Signer, error) {
	if key == nil || key.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%w: only Ed25519 keys sign receipts", ErrBadReceipt)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	return &Signer{key: key, id: id}, nil
}

// ID is the peer ID of the Signer's key, the Executor of its receipts.
func (s *Signer) ID() peer.ID { return s.id }

// Sign is Receipt.Sign with the Signer's key.
func (s *Signer) Sign(r *Receipt) ([]byte, error) {
	r.V, r.Executor, r.Sig = ReceiptVersion, s.id, nil
	if err := r.check(); err != nil {
		return nil, err
	}
	msg, err := r.signingInput()
	if err != nil {
		return nil, err
	}
	if r.Sig, err = record.SignBytes(s.key, msg); err != nil {
		return nil, fmt.Errorf("%w: sign: %v", ErrBadReceipt, err)
	}
	raw, ok := signedFrom(msg, r.Sig)
	if !ok {
		if raw, err = canon.Marshal(r.toWire()); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
		}
	}
	if len(raw) > MaxReceipt {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadReceipt, len(raw), MaxReceipt)
	}
	r.raw = raw
	return raw, nil
}

// DecodeReceipt reads and checks a receipt, signature included.
func DecodeReceipt(b []byte) (*Receipt, error) {
	return decodeReceipt(b, record.VerifyBy)
}

// DecodeReceiptBy is DecodeReceipt with the signature checked by verify,
// which must check as record.VerifyBy does (an executor's requester
// checks many receipts together with record.VerifyByBatch).
func DecodeReceiptBy(b []byte, verify func(author peer.ID, msg, sig []byte) error) (*Receipt, error) {
	return decodeReceipt(b, verify)
}

// DecodeStoredReceipt is DecodeReceipt without the signature check, for a
// receipt the caller checked with DecodeReceipt when it received it and
// has kept in its own storage since (a node's task journal). Never use it
// on bytes from the network or from another node.
func DecodeStoredReceipt(b []byte) (*Receipt, error) {
	return decodeReceipt(b, nil)
}

// decodeReceipt decodes b and checks its signature with verify, unless
// verify is nil.
func decodeReceipt(b []byte, verify func(author peer.ID, msg, sig []byte) error) (*Receipt, error) {
	if len(b) == 0 || len(b) > MaxReceipt {
		return nil, fmt.Errorf("%w: %d bytes, want 1 to %d", ErrBadReceipt, len(b), MaxReceipt)
	}
	var w wireReceipt
	if err := canon.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	c, err := cid.Cast(w.Community)
	if err != nil {
		return nil, fmt.Errorf("%w: community: %v", ErrBadReceipt, err)
	}
	r := &Receipt{
		V: w.V, Task: w.Task, Community: c, Requester: peer.ID(w.Requester), Executor: peer.ID(w.Executor),
		Agent: w.Agent, Skill: w.Skill, Input: w.Input, Output: w.Output, Status: w.Status,
		Started: w.Started, Ended: w.Ended, Sig: w.Sig,
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	if len(r.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrBadReceipt, len(r.Sig))
	}
	again, err := canon.Marshal(r.toWire())
	if err != nil || string(again) != string(b) {
		return nil, fmt.Errorf("%w: not in its canonical encoding", ErrBadReceipt)
	}
	if verify == nil {
		r.raw = append([]byte(nil), b...)
		return r, nil
	}
	msg, ok := unsignedFrom(b)
	if !ok {
		if msg, err = r.signingInput(); err != nil {
			return nil, err
		}
	}
	if err := verify(r.Executor, msg, r.Sig); err != nil {
		return nil, fmt.Errorf("%w: the signature is not the executor's (%s)", ErrBadReceipt, r.Executor)
	}
	r.raw = append([]byte(nil), b...)
	return r, nil
}

// Raw returns the receipt's encoding (set by Sign and DecodeReceipt).
func (r *Receipt) Raw() []byte { return r.raw }

// CID is the receipt's ID: CIDv1, dag-cbor, sha2-256 of its encoding, the
// ID attestations of subject type "receipt" name.
func (r *Receipt) CID() cid.Cid {
	sum, _ := mh.Sum(r.raw, mh.SHA2_256, -1)
	return cid.NewCidV1(cid.DagCBOR, sum)
}

// Duration is Ended - Started.
func (r *Receipt) Duration() time.Duration {
	return time.Duration(r.Ended-r.Started) * time.Millisecond
}
