package capindex

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/agora-p2p/agora/protocol/record"
)

// TestExchange: a member that asks gets every unexpired advert record the
// index took in; a peer the server does not allow gets nothing.
func TestExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	for i := range 3 {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		addr, _ := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 12000+i))
		if _, err := mn.AddPeer(k, addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	hs := mn.Hosts()
	server, member, stranger := hs[0], hs[1], hs[2]
	c, other := comm(t, "c"), comm(t, "other")

	x := New(nil)
	var want [][]byte
	for i := range 3 {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		rec, err := record.Sign(k, record.KindAdvert, c, adv(1, time.Now().Add(time.Hour), fmt.Sprintf("skill.%d", i)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := x.Receive(c, rec); err != nil || !ok {
			t.Fatalf("receive: %v %v", ok, err)
		}
		want = append(want, rec.Raw())
	}
	// An advert taken in without its record (Update) is not handed out.
	x.Update(c, "p-no-record", 1, adv(1, time.Now().Add(time.Hour), "x"))
	ServeExchange(server, x, func(cc cid.Cid, p peer.ID) bool { return cc.Equals(c) && p == member.ID() })

	got, err := PullAdverts(ctx, member, server.ID(), c)
	if err != nil {
		t.Fatal(err)
	}
	sortBytes := func(bs [][]byte) { slices.SortFunc(bs, bytes.Compare) }
	sortBytes(got)
	sortBytes(want)
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("pulled %d adverts, want the %d records the index took in", len(got), len(want))
	}
	for _, tc := range []struct {
		name string
		from peer.ID
		c    cid.Cid
	}{{"a stranger", stranger.ID(), c}, {"another community", member.ID(), other}} {
		h := member
		if tc.from == stranger.ID() {
			h = stranger
		}
		if got, err := PullAdverts(ctx, h, server.ID(), tc.c); err == nil && len(got) > 0 {
			t.Errorf("%s got %d adverts", tc.name, len(got))
		}
	}
}

// TestReadAdvertsLimits: an answer with too many records or one too large
// is the sender's fault (ErrExchange); a broken stream is not.
func TestReadAdvertsLimits(t *testing.T) {
	frames := func(n, size int) []byte {
		var buf bytes.Buffer
		w := msgio.NewVarintWriter(&buf)
		for range n {
			w.WriteMsg(make([]byte, size))
		}
		return buf.Bytes()
	}
	if got, err := ReadAdverts(bytes.NewReader(frames(3, 10))); err != nil || len(got) != 3 {
		t.Errorf("3 small records: %d, %v", len(got), err)
	}
	if _, err := ReadAdverts(bytes.NewReader(frames(MaxExchanged+1, 1))); !errors.Is(err, ErrExchange) {
		t.Errorf("%d records: %v, want ErrExchange", MaxExchanged+1, err)
	}
	if _, err := ReadAdverts(bytes.NewReader(frames(1, record.MaxSize+1))); !errors.Is(err, ErrExchange) {
		t.Errorf("a record of %d bytes: %v, want ErrExchange", record.MaxSize+1, err)
	}
	cut := frames(2, 100)
	if got, err := ReadAdverts(bytes.NewReader(cut[:len(cut)-5])); err == nil || errors.Is(err, ErrExchange) || len(got) != 1 {
		t.Errorf("a cut-off answer: %d records, %v; want the first and a plain error", len(got), err)
	}
}

// FuzzReadAdverts: no input makes the reader panic or return more than
// its limits allow.
func FuzzReadAdverts(f *testing.F) {
	f.Add([]byte{0x03, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _ := ReadAdverts(bytes.NewReader(b))
		if len(got) > MaxExchanged {
			t.Fatalf("%d records", len(got))
		}
		for _, r := range got {
			if len(r) > record.MaxSize {
				t.Fatalf("a record of %d bytes", len(r))
			}
		}
	})
}
