package record

import (
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
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

// expandedKeys holds the expanded form (the decoded point and its
// multiples) of the keys checked recently: a community's records come from
// its members again and again, and a check with the expanded key skips
// decoding the key and building its table, about 15 % of a check
// (29.6 → 25.3 µs on the 2-core development VM). The answers are the same
// (curve25519-voi caches the ZIP-215 verdicts on the key with it). Each
// entry is about 1.5 KiB; a key seen once pays its expansion once.
var expandedKeys = func() *lru.Cache[[voi.PublicKeySize]byte, *voi.ExpandedPublicKey] {
	c, err := lru.New[[voi.PublicKeySize]byte, *voi.ExpandedPublicKey](1024)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}()

// expand returns pub's expanded form and whether it came from the cache,
// or nil for a key that does not decode (the plain check then refuses it).
// A new key is cached by remember, once a signature by it has verified:
// keys an attacker makes up cannot push the members' out.
func expand(pub voi.PublicKey) (x *voi.ExpandedPublicKey, cached bool) {
	if len(pub) != voi.PublicKeySize {
		return nil, false
	}
	if x, ok := expandedKeys.Get([voi.PublicKeySize]byte(pub)); ok {
		return x, true
	}
	x, err := voi.NewExpandedPublicKey(pub)
	if err != nil {
		return nil, false
	}
	return x, false
}

func remember(pub voi.PublicKey, x *voi.ExpandedPublicKey) {
	expandedKeys.Add([voi.PublicKeySize]byte(pub), x)
}

// verify checks one signature under ZIP-215 with pub's expanded form.
func verify(pub voi.PublicKey, msg, sig []byte) bool {
	x, cached := expand(pub)
	if x == nil {
		return voi.VerifyWithOptions(pub, msg, sig, zip215)
	}
	ok := voi.VerifyExpandedWithOptions(x, msg, sig, zip215)
	if ok && !cached {
		remember(pub, x)
	}
	return ok
}

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
	pub, err := byKey(author, sig)
	if err != nil {
		return err
	}
	if !verify(pub, msg, sig) {
		return badBy(author)
	}
	return nil
}

// byKey is the key VerifyBy checks sig with, once sig has the right size.
func byKey(author peer.ID, sig []byte) (voi.PublicKey, error) {
	pub, err := inlineKey(author)
	if err != nil {
		return nil, err
	}
	if len(sig) != SigSize {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(sig), SigSize)
	}
	return voi.PublicKey(pub), nil
}

func badBy(author peer.ID) error { return fmt.Errorf("%w: author %s", ErrBadSignature, author) }

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
	if !verify(pub, msg, r.Sig) {
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
	items := make([]sigItem, 0, len(rs))
	var idx []int
	for i, r := range rs {
		pub, msg, err := r.sigParts()
		if err != nil {
			errs[i] = err
			continue
		}
		items = append(items, sigItem{pub, msg, r.Sig})
		idx = append(idx, i)
	}
	for k, ok := range verifyBatch(items) {
		if !ok {
			errs[idx[k]] = badSignature(rs[idx[k]])
		}
	}
	return errs
}

// BySig is a signature VerifyBy checks: Msg signed by the Ed25519 key
// inlined in Author.
type BySig struct {
	Author   peer.ID
	Msg, Sig []byte
}

// VerifyByBatch is VerifyBy of each, checked together as VerifyBatch
// checks records. The result has one error (or nil) per signature, in
// order.
func VerifyByBatch(cs []BySig) []error {
	errs := make([]error, len(cs))
	if len(cs) == 1 {
		errs[0] = VerifyBy(cs[0].Author, cs[0].Msg, cs[0].Sig)
		return errs
	}
	items := make([]sigItem, 0, len(cs))
	var idx []int
	for i, c := range cs {
		pub, err := byKey(c.Author, c.Sig)
		if err != nil {
			errs[i] = err
			continue
		}
		items = append(items, sigItem{pub, c.Msg, c.Sig})
		idx = append(idx, i)
	}
	for k, ok := range verifyBatch(items) {
		if !ok {
			errs[idx[k]] = badBy(cs[idx[k]].Author)
		}
	}
	return errs
}

type sigItem struct {
	pub      voi.PublicKey
	msg, sig []byte
}

// verifyBatch checks the signatures together (ZIP-215, expanded keys from
// the cache) and says which are good.
func verifyBatch(items []sigItem) []bool {
	if len(items) == 0 {
		return nil
	}
	bv := voi.NewBatchVerifierWithCapacity(len(items))
	fresh := map[int]*voi.ExpandedPublicKey{} // keys to remember if their signature verifies
	for k, it := range items {
		if x, cached := expand(it.pub); x != nil {
			bv.AddExpandedWithOptions(x, it.msg, it.sig, zip215)
			if !cached {
				fresh[k] = x
			}
		} else {
			bv.AddWithOptions(it.pub, it.msg, it.sig, zip215)
		}
	}
	_, valid := bv.Verify(nil) // nil: crypto/rand
	for k, x := range fresh {
		if valid[k] {
			remember(items[k].pub, x)
		}
	}
	return valid
}
