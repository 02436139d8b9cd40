package capindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/agora-p2p/agora/protocol/record"
)

// ExchangeProtocol hands a member the adverts this node holds for a
// community (docs/protocol.md §12.4). Gossip carries an advert once, when
// its author publishes it; a node that joins or comes back would otherwise
// see only its neighbours' adverts (they republish when it joins) and the
// rest at their authors' next refresh, minutes later.
const ExchangeProtocol = "/agora/adverts/1.0.0"

// Limits of an exchange.
const (
	// MaxExchanged is the most adverts one answer carries.
	MaxExchanged = 4096
	// maxRequest bounds the request: one community ID.
	maxRequest = 128
	// exchangeTimeout bounds a whole exchange.
	exchangeTimeout = 20 * time.Second
)

// ErrExchange marks a peer's answer that breaks the protocol.
var ErrExchange = errors.New("advert exchange")

// ServeExchange answers advert requests on h from peers allowed(c, p)
// says are members of community c that this node is in, with up to
// MaxExchanged of the index's advert records: each one varint-length
// prefixed, then the end of the stream.
func ServeExchange(h host.Host, x *Index, allowed func(c cid.Cid, p peer.ID) bool) {
	h.SetStreamHandler(ExchangeProtocol, func(s network.Stream) {
		defer s.Close()
		s.SetDeadline(time.Now().Add(exchangeTimeout))
		r := msgio.NewVarintReaderSize(s, maxRequest)
		req, err := r.ReadMsg()
		if err != nil {
			s.Reset()
			return
		}
		c, err := cid.Cast(req)
		r.ReleaseMsg(req)
		if err != nil || !allowed(c, s.Conn().RemotePeer()) {
			s.Reset()
			return
		}
		w := msgio.NewVarintWriter(s)
		for _, raw := range x.Records(c, MaxExchanged) {
			if err := w.WriteMsg(raw); err != nil {
				s.Reset()
				return
			}
		}
	})
}

// PullAdverts asks p for the adverts it holds for community c and returns
// them as received: the caller must open each record (record.Open) and
// check it as gossip would. An answer with more than MaxExchanged records
// or a record over record.MaxSize is an error wrapping ErrExchange (the
// records before it are returned).
func PullAdverts(ctx context.Context, h host.Host, p peer.ID, c cid.Cid) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, p, ExchangeProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	if err := msgio.NewVarintWriter(s).WriteMsg(c.Bytes()); err != nil {
		s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	return ReadAdverts(s)
}

// ReadAdverts reads an exchange's answer until the end of the stream.
func ReadAdverts(rd io.Reader) ([][]byte, error) {
	r := msgio.NewVarintReaderSize(rd, record.MaxSize)
	var out [][]byte
	for {
		msg, err := r.ReadMsg()
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case errors.Is(err, msgio.ErrMsgTooLarge):
			return out, fmt.Errorf("%w: a record over %d bytes", ErrExchange, record.MaxSize)
		case err != nil:
			return out, err // the stream broke: not provably the peer's doing
		}
		if len(out) == MaxExchanged {
			return out, fmt.Errorf("%w: more than %d adverts", ErrExchange, MaxExchanged)
		}
		out = append(out, append([]byte(nil), msg...))
		r.ReleaseMsg(msg)
	}
}
