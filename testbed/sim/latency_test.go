package sim

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestLatencyIsPipelined: writes arrive one latency after they were made,
// in order, however many are in flight; Close delivers them all first.
func TestLatencyIsPipelined(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	a, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	const lat = 50 * time.Millisecond
	ha, hb := withLatency(a, lat), withLatency(b, lat)
	got := make(chan []byte, 1)
	hb.SetStreamHandler("/p", func(s network.Stream) {
		data, _ := io.ReadAll(s)
		s.Close()
		got <- data
	})
	if err := ha.Connect(context.Background(), hb.Peerstore().PeerInfo(hb.ID())); err != nil {
		t.Fatal(err)
	}
	s, err := ha.NewStream(context.Background(), hb.ID(), "/p")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var want []byte
	for i := range 200 {
		msg := make([]byte, 1000)
		for j := range msg {
			msg[j] = byte(i)
		}
		want = append(want, msg...)
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var data []byte
	select {
	case data = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived")
	}
	took := time.Since(start)
	if string(data) != string(want) {
		t.Fatalf("got %d bytes, want %d in order", len(data), len(want))
	}
	// Serialised, 200 writes would take 200 latencies (10 s).
	if took < lat || took > 20*lat {
		t.Errorf("200 writes took %s with a %s latency; want about one latency", took, lat)
	}
	if _, err := s.Write([]byte("late")); err == nil {
		t.Error("a write after Close was accepted")
	}
}

func TestLatencyResetDropsWhatIsInFlight(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	a, _ := mn.GenPeer()
	b, _ := mn.GenPeer()
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	ha, hb := withLatency(a, time.Hour), withLatency(b, time.Hour)
	hb.SetStreamHandler("/p", func(s network.Stream) { io.Copy(io.Discard, s) })
	if err := ha.Connect(context.Background(), hb.Peerstore().PeerInfo(hb.ID())); err != nil {
		t.Fatal(err)
	}
	s, err := ha.NewStream(context.Background(), hb.ID(), "/p")
	if err != nil {
		t.Fatal(err)
	}
	ds := s.(*delayedStream)
	if _, err := s.Write([]byte("never")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ds.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery goroutine outlived the reset")
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("a write after Reset was accepted")
	}
}
