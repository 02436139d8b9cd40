package record

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// verifyCase is a record and whether its signature is good.
type verifyCase struct {
	r    *Record
	good bool
}

// verifyCases returns n records by a few authors, every third one with a
// signature that does not match.
func verifyCases(t testing.TB, n int) []verifyCase {
	t.Helper()
	keys := []crypto.PrivKey{newKey(t), newKey(t), newKey(t), newKey(t)}
	out := make([]verifyCase, n)
	for i := range out {
		r := signT(t, keys[i%len(keys)], KindFeedback, testCommunity, goldenBody{Score: int64(i)})
		good := i%3 != 0
		if !good {
			b := mutate(t, r, func(w *wireRecord) { w.Sig = bytes.Clone(w.Sig); w.Sig[7] ^= 0x40 })
			var err error
			if r, err = Decode(b); err != nil {
				t.Fatal(err)
			}
		}
		out[i] = verifyCase{r, good}
	}
	return out
}

// TestVerifyBatchAgreesWithVerify: a batch says of each record exactly
// what Verify says, bad ones mixed in, for every batch size.
func TestVerifyBatchAgreesWithVerify(t *testing.T) {
	cases := verifyCases(t, 130)
	for _, n := range []int{1, 2, 3, 64, 130} {
		var rs []*Record
		for _, c := range cases[:n] {
			rs = append(rs, c.r)
		}
		errs := VerifyBatch(rs)
		if len(errs) != n {
			t.Fatalf("%d records, %d results", n, len(errs))
		}
		for i, c := range cases[:n] {
			single := c.r.Verify()
			if (single == nil) != c.good {
				t.Fatalf("record %d: Verify = %v, want good=%v", i, single, c.good)
			}
			if (errs[i] == nil) != c.good || (errs[i] != nil && !errors.Is(errs[i], ErrBadSignature)) {
				t.Fatalf("batch of %d, record %d: %v, want good=%v", n, i, errs[i], c.good)
			}
		}
	}
	// All good: no error at all. A bad author is refused before any
	// signature work, and the others still checked.
	good := []*Record{cases[1].r, cases[2].r, cases[4].r}
	for i, err := range VerifyBatch(good) {
		if err != nil {
			t.Fatalf("good record %d: %v", i, err)
		}
	}
	bad := *cases[1].r
	bad.Author = "not a key"
	errs := VerifyBatch([]*Record{&bad, cases[2].r, cases[3].r})
	if !errors.Is(errs[0], ErrBadAuthor) || errs[1] != nil || !errors.Is(errs[2], ErrBadSignature) {
		t.Fatalf("a bad author in a batch: %v", errs)
	}
	if errs := VerifyBatch([]*Record{&bad}); !errors.Is(errs[0], ErrBadAuthor) {
		t.Fatalf("a batch of one bad author: %v", errs)
	}
	if errs := VerifyBatch(nil); len(errs) != 0 {
		t.Fatalf("an empty batch: %v", errs)
	}
}

// TestVerifyByBatchAgreesWithVerifyBy: VerifyByBatch says of each
// signature what VerifyBy says, bad signatures, short ones and authors
// with no inlined key mixed in.
func TestVerifyByBatchAgreesWithVerifyBy(t *testing.T) {
	var cs []BySig
	for i, c := range verifyCases(t, 70) {
		_, msg, err := c.r.sigParts()
		if err != nil {
			t.Fatal(err)
		}
		b := BySig{Author: c.r.Author, Msg: msg, Sig: c.r.Sig}
		switch i % 10 {
		case 5:
			b.Sig = b.Sig[:SigSize-1]
		case 7:
			b.Author = "not a key"
		}
		cs = append(cs, b)
	}
	for _, n := range []int{1, 2, 17, 70} {
		errs := VerifyByBatch(cs[:n])
		if len(errs) != n {
			t.Fatalf("%d signatures, %d results", n, len(errs))
		}
		for i, c := range cs[:n] {
			single := VerifyBy(c.Author, c.Msg, c.Sig)
			if (single == nil) != (errs[i] == nil) {
				t.Fatalf("batch of %d, signature %d: %v, VerifyBy says %v", n, i, errs[i], single)
			}
			for _, kind := range []error{ErrBadSignature, ErrBadAuthor} {
				if errors.Is(single, kind) != errors.Is(errs[i], kind) {
					t.Fatalf("batch of %d, signature %d: %v, VerifyBy says %v", n, i, errs[i], single)
				}
			}
		}
	}
	if errs := VerifyByBatch(nil); len(errs) != 0 {
		t.Fatalf("an empty batch: %v", errs)
	}
}

// TestHonestSignaturesPassBothRules: what Sign makes passes Go's
// cofactorless check as well as ZIP-215, so the rule refuses no record an
// RFC 8032 signer made.
func TestHonestSignaturesPassBothRules(t *testing.T) {
	for _, c := range verifyCases(t, 60) {
		pub, msg, err := c.r.sigParts()
		if err != nil {
			t.Fatal(err)
		}
		std := ed25519.Verify(ed25519.PublicKey(pub), msg, c.r.Sig)
		z := voi.VerifyWithOptions(pub, msg, c.r.Sig, zip215)
		if std != c.good || z != c.good {
			t.Fatalf("good=%v: stdlib %v, ZIP-215 %v", c.good, std, z)
		}
	}
}

// FuzzBatchMatchesSingle: whatever the signature bytes, a batch (with
// honest records around it) says of a record what a single check says.
func FuzzBatchMatchesSingle(f *testing.F) {
	cases := verifyCases(f, 4)
	f.Add(cases[1].r.Sig)
	f.Add(cases[0].r.Sig)
	f.Add(make([]byte, SigSize))
	f.Add(append([]byte{1}, make([]byte, SigSize-1)...)) // R = identity, S = 0
	f.Fuzz(func(t *testing.T, sig []byte) {
		r := *cases[1].r
		r.Sig = sig
		single := r.Verify()
		rs := []*Record{&r, cases[1].r, cases[2].r, cases[3].r}
		errs := VerifyBatch(rs)
		if (errs[0] == nil) != (single == nil) {
			t.Fatalf("batch says %v, single says %v", errs[0], single)
		}
		for i, err := range errs[1:] {
			if (err == nil) != cases[i+1].good {
				t.Fatalf("an honest neighbour (%d) came out %v", i+1, err)
			}
		}
	})
}

// TestSignBytesIsKeySign: SignBytes makes the very signature libp2p's
// key.Sign makes, and VerifyBy accepts it and nothing else.
func TestSignBytesIsKeySign(t *testing.T) {
	for i := range 20 {
		key := newKey(t)
		msg := bytes.Repeat([]byte{byte(i)}, i*37)
		want, err := key.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := SignBytes(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: SignBytes differs from key.Sign", i)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyBy(id, msg, got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		bad := bytes.Clone(got)
		bad[i%len(bad)] ^= 1
		if err := VerifyBy(id, msg, bad); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("message %d, flipped bit: %v, want ErrBadSignature", i, err)
		}
		if err := VerifyBy(id, append(msg, 0), got); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("message %d, longer message: %v, want ErrBadSignature", i, err)
		}
		if err := VerifyBy(id, msg, got[:63]); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("message %d, short signature: %v, want ErrBadSignature", i, err)
		}
		if err := VerifyBy(peer.ID("not a key"), msg, got); !errors.Is(err, ErrBadAuthor) {
			t.Fatalf("message %d, bad author: %v, want ErrBadAuthor", i, err)
		}
	}
	if _, err := SignBytes(nil, []byte("x")); err == nil {
		t.Fatal("SignBytes(nil) signed")
	}
}

// TestExpandedKeysAreCachedOnlyOnceTrusted: a key joins the cache of
// expanded keys only once a signature by it has verified, alone or in a
// batch, so made-up keys cannot push members' keys out; the cached path
// answers as the plain check does.
func TestExpandedKeysAreCachedOnlyOnceTrusted(t *testing.T) {
	inCache := func(r *Record) bool {
		pub, _, err := r.sigParts()
		if err != nil {
			t.Fatal(err)
		}
		return expandedKeys.Contains([voi.PublicKeySize]byte(pub))
	}
	for _, batch := range []bool{false, true} {
		cases := verifyCases(t, 3) // fresh keys; the first record is forged
		forged, good := cases[0].r, cases[1].r
		check := func(r *Record) error {
			if batch {
				return VerifyBatch([]*Record{r, cases[2].r})[0]
			}
			return r.Verify()
		}
		if err := check(forged); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("batch=%v: forged record: %v", batch, err)
		}
		if inCache(forged) {
			t.Fatalf("batch=%v: a key with only a forged signature was cached", batch)
		}
		if err := check(good); err != nil {
			t.Fatalf("batch=%v: good record: %v", batch, err)
		}
		if !inCache(good) {
			t.Fatalf("batch=%v: a key whose signature verified was not cached", batch)
		}
		// With the key cached, the same answers.
		if err := check(good); err != nil {
			t.Fatalf("batch=%v: good record, cached key: %v", batch, err)
		}
		bad := mutate(t, good, func(w *wireRecord) { w.Sig = bytes.Clone(w.Sig); w.Sig[3] ^= 1 })
		r, err := Decode(bad)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(r); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("batch=%v: forged record by a cached key: %v", batch, err)
		}
	}
}
