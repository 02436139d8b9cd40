package record

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Signatures are checked under the ZIP-215 rules (docs/protocol.md §2.1):
// the cofactored equation, canonical S, any encoding of A and R that
// decodes. Every signature an RFC 8032 signer makes passes them, and unlike
// Go's cofactorless check they give the same answer one at a time and in a
// batch, so a node that batches and a node that does not agree on every
// record, forged ones included.
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// SignBytes signs msg with an Ed25519 key. The signature is the one
// key.Sign makes (Ed25519 signing is deterministic, RFC 8032 §5.1.6), made
// with curve25519-voi's vectorised arithmetic in about 60 % of the time of
// Go's crypto/ed25519, which key.Sign uses. Records and receipts are signed
// with it.
func SignBytes(key crypto.PrivKey, msg []byte) ([]byte, error) {
	if key == nil || key.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("%w: only Ed25519 keys sign", ErrBadAuthor)
	}
	raw, err := key.Raw()
	if err != nil || len(raw) != voi.PrivateKeySize {
		return key.Sign(msg)
	}
	return voi.Sign(voi.PrivateKey(raw), msg), nil
}

// VerifyBy checks sig over msg against the Ed25519 key inlined in author,
// under the same rules as a record's signature (ZIP-215, below): receipts
// are checked with it, so a receipt verifies the same way on its own and
// inside a feedback record.
func VerifyBy(author peer.ID, msg, sig []byte) error {
	pub, err := inlineKey(author)
	if err != nil {
		return err
	}
	if len(sig) != SigSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(sig), SigSize)
	}
	if !voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, zip215) {
		return fmt.Errorf("%w: author %s", ErrBadSignature, author)
	}
	return nil
}

// sigParts returns the key, message and signature Verify checks.
func (r *Record) sigParts() (voi.PublicKey, []byte, error) {
	pub, err := inlineKey(r.Author)
	if err != nil {
		return nil, nil, err
	}
	if len(r.Sig) != SigSize {
		return nil, nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(r.Sig), SigSize)
	}
	msg, ok := cutSig(r.raw, r.Sig)
	if !ok {
		var err error
		if msg, err = r.signingInput(); err != nil {
			return nil, nil, err
		}
	}
	return voi.PublicKey(pub), msg, nil
}

func badSignature(r *Record) error {
	return fmt.Errorf("%w: author %s", ErrBadSignature, r.Author)
}

// Verify checks the signature against the public key inlined in Author.
func (r *Record) Verify() error {
	pub, msg, err := r.sigParts()
	if err != nil {
		return err
	}
	if !voi.VerifyWithOptions(pub, msg, r.Sig, zip215) {
		return badSignature(r)
	}
	return nil
}

// VerifyBatch is Verify of each record, checked together: a batch of 64
// signatures costs about 40% of 64 single checks. When a signature in the
// batch is bad, every one is checked again alone to find it, so a forger
// costs the honest records of its batch one extra check each, at most.
// The result has one error (or nil) per record, in order.
func VerifyBatch(rs []*Record) []error {
	errs := make([]error, len(rs))
	if len(rs) == 1 {
		errs[0] = rs[0].Verify()
		return errs
	}
	bv := voi.NewBatchVerifierWithCapacity(len(rs))
	var idx []int
	for i, r := range rs {
		pub, msg, err := r.sigParts()
		if err != nil {
			errs[i] = err
			continue
		}
		bv.AddWithOptions(pub, msg, r.Sig, zip215)
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return errs
	}
	_, valid := bv.Verify(nil) // nil: crypto/rand
	for k, i := range idx {
		if !valid[k] {
			errs[i] = badSignature(rs[i])
		}
	}
	return errs
}
