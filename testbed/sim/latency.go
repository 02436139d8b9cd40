package sim

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// latencyHost delays every byte written on the streams it opens or
// accepts by a fixed one-way latency, pipelined: a write is delivered
// latency after it was made, however many are in flight, as on a real
// link with that propagation delay and ample bandwidth.
//
// mocknet's own link latency is not used because its streams hold each
// write of 256 bytes or more until the previous one has arrived, which
// caps a stream at about one such write per latency (measured: 100 writes
// of 1 KB take 1 s at 20 ms). A gossipsub stream between two members then
// carries at most ~100 records a second and the records phase would
// measure mocknet's queue, not Agora.
//
// Dials and libp2p's own protocols (identify, ping) are not delayed.
type latencyHost struct {
	host.Host
	latency time.Duration
}

func withLatency(h host.Host, d time.Duration) host.Host {
	if d <= 0 {
		return h
	}
	return &latencyHost{Host: h, latency: d}
}

func (h *latencyHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return delay(s, h.latency), nil
}

func (h *latencyHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(delay(s, h.latency)) })
}

func (h *latencyHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(delay(s, h.latency)) })
}

// delayedStream is a stream whose writes arrive latency later.
type delayedStream struct {
	network.Stream
	latency time.Duration

	mu      sync.Mutex
	queue   []pending
	err     error // the stream's write side is done: reset, closed or failed
	wake    chan struct{}
	kill    chan struct{} // closed by drop
	killed  sync.Once
	stopped chan struct{}
}

type pending struct {
	due        time.Time
	data       []byte
	closeWrite bool
}

var errWriteClosed = errors.New("write on a stream closed for writing")

func delay(s network.Stream, d time.Duration) *delayedStream {
	ds := &delayedStream{Stream: s, latency: d, wake: make(chan struct{}, 1), kill: make(chan struct{}), stopped: make(chan struct{})}
	go ds.deliver()
	return ds
}

func (s *delayedStream) push(p pending) error {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if p.closeWrite {
		s.err = errWriteClosed
	}
	s.queue = append(s.queue, p)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *delayedStream) Write(p []byte) (int, error) {
	if err := s.push(pending{due: time.Now().Add(s.latency), data: bytes.Clone(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite closes the write side once what was written has arrived.
func (s *delayedStream) CloseWrite() error {
	err := s.push(pending{due: time.Now().Add(s.latency), closeWrite: true})
	if errors.Is(err, errWriteClosed) {
		return nil // closing twice is harmless
	}
	return err
}

func (s *delayedStream) Close() error {
	rerr := s.Stream.CloseRead()
	if err := s.CloseWrite(); err != nil {
		return err
	}
	return rerr
}

func (s *delayedStream) Reset() error {
	s.drop(network.ErrReset)
	return s.Stream.Reset()
}

func (s *delayedStream) ResetWithError(code network.StreamErrorCode) error {
	s.drop(network.ErrReset)
	return s.Stream.ResetWithError(code)
}

// drop discards what is in flight and ends the write side.
func (s *delayedStream) drop(err error) {
	s.mu.Lock()
	s.queue = nil
	if s.err == nil || errors.Is(s.err, errWriteClosed) {
		s.err = err
	}
	s.mu.Unlock()
	s.killed.Do(func() { close(s.kill) })
}

// deliver writes each queued write through when it is due, in order.
func (s *delayedStream) deliver() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			done := s.err != nil && !errors.Is(s.err, errWriteClosed)
			s.mu.Unlock()
			if done {
				return
			}
			select {
			case <-s.wake:
			case <-s.kill:
				return
			}
			continue
		}
		p := s.queue[0]
		s.queue[0] = pending{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if d := time.Until(p.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.kill:
				t.Stop()
				return
			}
		}
		if p.closeWrite {
			s.Stream.CloseWrite()
			return
		}
		if _, err := s.Stream.Write(p.data); err != nil {
			s.drop(err)
			return
		}
	}
}
