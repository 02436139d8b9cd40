package tasks

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/protocol/record"
)

type sigFixture struct {
	author peer.ID
	msg    []byte
	sig    []byte
	good   bool
}

func sigFixtures(t *testing.T, n int) []sigFixture {
	t.Helper()
	var out []sigFixture
	for i := range n {
		priv, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(fmt.Sprintf("receipt %d", i))
		sig, err := priv.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		f := sigFixture{author: id, msg: msg, sig: sig, good: true}
		switch i % 5 {
		case 3: // a forgery: the signature of another message
			f.msg, f.good = []byte("something else"), false
		case 4: // a short signature
			f.sig, f.good = sig[:ed25519.SignatureSize-1], false
		}
		out = append(out, f)
	}
	return out
}

// TestSigBatcherAnswersEachCheck runs many concurrent checks, honest and
// forged, through one batcher: each gets record.VerifyBy's answer, and
// checks made together share batches.
func TestSigBatcherAnswersEachCheck(t *testing.T) {
	fx := sigFixtures(t, 40)
	b := newSigBatcher()
	const workers, rounds = 32, 25
	b.waiting.Store(workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				f := fx[(w*rounds+r)%len(fx)]
				err := b.check(f.author, f.msg, f.sig)
				if want := record.VerifyBy(f.author, f.msg, f.sig); (err == nil) != (want == nil) || (err == nil) != f.good {
					errs <- fmt.Errorf("check %d/%d: %v, VerifyBy says %v", w, r, err, want)
					return
				}
				if err != nil && !errors.Is(err, record.ErrBadSignature) {
					errs <- fmt.Errorf("check %d/%d: %v is not a bad signature", w, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	batches, sigs := b.batches.Load(), b.sigs.Load()
	if sigs != workers*rounds {
		t.Fatalf("%d signatures checked, want %d", sigs, workers*rounds)
	}
	t.Logf("%d signatures in %d batches", sigs, batches)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.leading || len(b.pending) != 0 {
		t.Fatalf("the batcher did not settle: leading %v, %d pending", b.leading, len(b.pending))
	}
}

// TestSigBatcherAlone checks that a requester with no other task in flight
// checks its receipt alone, at once.
func TestSigBatcherAlone(t *testing.T) {
	fx := sigFixtures(t, 5)
	b := newSigBatcher()
	var sizes []int
	b.verify = func(cs []record.BySig) []error {
		sizes = append(sizes, len(cs))
		return record.VerifyByBatch(cs)
	}
	b.waiting.Store(1)
	for _, f := range fx {
		if err := b.check(f.author, f.msg, f.sig); (err == nil) != f.good {
			t.Fatalf("%v for a signature that is good: %v", err, f.good)
		}
	}
	if fmt.Sprint(sizes) != "[1 1 1 1 1]" {
		t.Fatalf("batches %v, want five of one", sizes)
	}
}
