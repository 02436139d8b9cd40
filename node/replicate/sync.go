package replicate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	wire "github.com/agora-p2p/agora/protocol/recon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/registry"
	"github.com/agora-p2p/agora/registry/recon"
)

// SyncWith pulls from p the records of community c that this node lacks:
// a catch-up stream when the node holds none yet, reconciliation otherwise.
// Re-running an interrupted sync resumes it: what was stored matches at once.
func (s *Service) SyncWith(ctx context.Context, p peer.ID, c cid.Cid) (res Result, err error) {
	if !s.comms.IsMember(c) {
		return res, fmt.Errorf("this node is not in community %s", c)
	}
	v, err := s.snapshot(c)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "sync"), p, wire.ProtocolID)
	if err != nil {
		return res, fmt.Errorf("open sync stream: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	// Close cancels ctx: a peer that stops answering must not hold it up
	// until the deadline (nor forever, on a transport without deadlines).
	defer context.AfterFunc(ctx, func() { st.Reset() })()
	sio := &streamIO{Stream: st}
	defer func() {
		res.BytesSent, res.BytesRecv = sio.sent, sio.recv
		s.account(res, true)
		if err != nil {
			st.Reset()
			if errors.Is(err, errPeerFault) {
				s.pen.Fault(p, "sync:"+err.Error())
			}
			return
		}
		st.Close()
	}()
	br := bufio.NewReader(sio)
	if v.Len() == 0 {
		return s.catchUp(ctx, sio, br, p, c)
	}

	sess, err := recon.NewSession(v, recon.Config{Community: c.Bytes()})
	if err != nil {
		return res, err
	}
	f, err := sess.Initiate()
	if err != nil {
		return res, err
	}
	var need [][]byte
	for {
		if err := wire.WriteFrame(sio, f); err != nil {
			return res, fmt.Errorf("send: %w", err)
		}
		if _, isDone := f.(*wire.Done); isDone {
			break
		}
		in, err := wire.ReadFrame(br, wire.MaxFrameSize)
		if err != nil {
			return res, readErr(err)
		}
		out, have, nd, _, err := sess.Reconcile(in)
		if err != nil {
			return res, s.sessionErr(sio, err)
		}
		need = append(need, nd...)
		res.Have += len(have)
		f = out
		if len(need) >= maxNeedPerSession {
			// Fetch this much now; the next session continues. It also bounds
			// what a peer listing IDs it does not have can make us hold.
			f = &wire.Done{}
		}
	}
	res.Rounds, res.Need, res.Complete = sess.Rounds(), len(need), sess.Complete()

	var retry [][]byte
	for i := 0; i < len(need); i += wire.MaxFetchBatch {
		batch := need[i:min(i+wire.MaxFetchBatch, len(need))]
		if err := wire.WriteFrame(sio, &wire.Fetch{CIDs: batch}); err != nil {
			return res, fmt.Errorf("send fetch: %w", err)
		}
		asked := make(map[string]bool, len(batch))
		for _, id := range batch {
			asked[string(id)] = true
		}
		var got [][]byte
		served := 0
		for more := true; more; {
			in, err := wire.ReadFrame(br, wire.MaxRecordsFrame)
			if err != nil {
				return res, readErr(err)
			}
			recs, ok := in.(*wire.Records)
			if !ok {
				return res, s.unexpected(in)
			}
			for _, raw := range recs.Records {
				r, err := record.Decode(raw)
				if err != nil {
					return res, fault("a fetched record does not decode: %v", err)
				}
				if id := r.CID().Bytes(); !asked[string(id)] {
					return res, fault("the peer sent a record that was not asked for (or twice)")
				} else {
					delete(asked, string(id))
				}
				got = append(got, raw)
				served++
			}
			more = recs.More
		}
		if served == 0 {
			// It listed these IDs in reconciliation; an honest peer serves them.
			return res, fault("the peer served none of %d records it listed", len(batch))
		}
		r, err := s.ingest(ctx, c, got)
		res.Fetched += r.Fetched
		res.Rejected += r.Rejected
		retry = append(retry, r.retry...)
		if err != nil {
			return res, err
		}
	}
	if len(retry) > 0 { // references fetched in a later batch
		r, err := s.ingest(ctx, c, retry)
		res.Fetched += r.Fetched
		if err != nil {
			return res, err
		}
	}
	if err := st.CloseWrite(); err != nil {
		return res, err
	}
	return res, nil
}

// catchUp receives every record of the community in one stream.
func (s *Service) catchUp(ctx context.Context, w io.Writer, br *bufio.Reader, p peer.ID, c cid.Cid) (Result, error) {
	var res Result
	if err := wire.WriteFrame(w, &wire.CatchUp{Community: c.Bytes()}); err != nil {
		return res, fmt.Errorf("send: %w", err)
	}
	var retry [][]byte
	var last recon.Item
	for more := true; more; {
		in, err := wire.ReadFrame(br, wire.MaxRecordsFrame)
		if err != nil {
			return res, readErr(err)
		}
		recs, ok := in.(*wire.Records)
		if !ok {
			return res, s.unexpected(in)
		}
		// The stream comes in strictly increasing (created, ID) order, which
		// also rules out a record sent twice.
		for _, raw := range recs.Records {
			rec, err := record.Decode(raw)
			if err != nil {
				continue // ingest classifies it
			}
			it := recon.ItemOf(rec)
			if last.ID != nil && !last.Less(it) {
				return res, fault("catch-up records out of order or repeated")
			}
			last = it
		}
		res.Need += len(recs.Records)
		r, err := s.ingest(ctx, c, recs.Records)
		res.Fetched += r.Fetched
		res.Rejected += r.Rejected
		retry = append(retry, r.retry...)
		if err != nil {
			return res, err
		}
		more = recs.More
	}
	if len(retry) > 0 {
		r, err := s.ingest(ctx, c, retry)
		res.Fetched += r.Fetched
		if err != nil {
			return res, err
		}
	}
	res.Complete = true
	return res, nil
}

type ingestResult struct {
	Fetched, Rejected int
	retry             [][]byte
}

// ingest stores fetched records. A record of another community or one that
// fails validation through the sender's fault ends the session as the
// peer's fault; records whose reference is still missing are kept for a
// second pass.
func (s *Service) ingest(ctx context.Context, c cid.Cid, raws [][]byte) (ingestResult, error) {
	var r ingestResult
	known := raws[:0:0]
	for _, raw := range raws {
		rec, err := record.Decode(raw)
		if err != nil && record.IsSenderFault(err) {
			return r, fault("a record does not decode: %v", err)
		}
		if err != nil {
			r.Rejected++ // a newer version or kind: not this node's to judge
			continue
		}
		if !rec.Community.Equals(c) {
			return r, fault("the peer sent a record of another community")
		}
		known = append(known, raw)
	}
	raws = known
	for i, res := range s.store.IngestBatch(ctx, raws) {
		switch {
		case res.Err == nil && res.New:
			r.Fetched++
		case res.Err == nil:
		case registry.IsSenderFault(res.Err):
			r.Rejected++
			return r, fault("a record failed validation: %s", registry.Reason(res.Err))
		case registry.IsRetryable(res.Err):
			r.retry = append(r.retry, raws[i])
		case ctx.Err() != nil:
			return r, ctx.Err()
		default:
			r.Rejected++ // e.g. from the future or rate-limited: fetched again later
		}
	}
	return r, nil
}

// serve answers a peer's sync session.
func (s *Service) serve(st network.Stream) {
	p := st.Conn().RemotePeer()
	if s.pen.Dropped(p) {
		st.Reset()
		return
	}
	s.mu.Lock()
	total := 0
	for _, n := range s.incoming {
		total += n
	}
	busy := s.incoming[p] >= maxIncomingPerPeer || total >= maxIncomingTotal
	if !busy {
		s.incoming[p]++
	}
	s.mu.Unlock()
	sio := &streamIO{Stream: st}
	if busy {
		wire.WriteFrame(sio, &wire.Error{Code: wire.CodeBusy, Reason: "too many sync sessions; try again later"})
		st.Close()
		return
	}
	defer func() {
		s.mu.Lock()
		if s.incoming[p]--; s.incoming[p] == 0 {
			delete(s.incoming, p)
		}
		s.mu.Unlock()
	}()
	if err := st.Scope().SetService("agora.sync"); err != nil {
		st.Reset()
		return
	}
	if err := st.Scope().ReserveMemory(2*wire.MaxRecordsFrame, network.ReservationPriorityLow); err != nil {
		wire.WriteFrame(sio, &wire.Error{Code: wire.CodeBusy, Reason: "out of memory for sync; try again later"})
		st.Close()
		return
	}
	defer st.Scope().ReleaseMemory(2 * wire.MaxRecordsFrame)
	st.SetDeadline(time.Now().Add(s.timeout))

	var res Result
	err := s.respond(sio, bufio.NewReader(sio), p)
	res.BytesSent, res.BytesRecv = sio.sent, sio.recv
	s.account(res, false)
	if err != nil {
		s.log.Debug("sync session with peer ended", "peer", p, "err", err)
		if errors.Is(err, errPeerFault) {
			s.pen.Fault(p, "sync:"+err.Error())
			// Say why before closing, as §8.9 asks; the reason is bounded.
			reason := err.Error()
			if len(reason) > wire.MaxReasonLength {
				reason = reason[:wire.MaxReasonLength]
			}
			if wire.WriteFrame(sio, &wire.Error{Code: wire.CodeBadFrame, Reason: reason}) == nil {
				st.Close()
				return
			}
		}
		st.Reset()
		return
	}
	st.Close()
}

func (s *Service) respond(w io.Writer, br *bufio.Reader, p peer.ID) error {
	first, err := wire.ReadFrame(br, wire.MaxFrameSize)
	if err != nil {
		return readErr(err)
	}
	var commBytes []byte
	switch f := first.(type) {
	case *wire.Open:
		commBytes = f.Community
	case *wire.CatchUp:
		commBytes = f.Community
	default:
		return s.unexpected(first)
	}
	c, err := cid.Cast(commBytes)
	if err != nil || !s.comms.IsMember(c) {
		return wire.WriteFrame(w, &wire.Error{Code: wire.CodeUnknownCommunity, Reason: "this node is not in that community"})
	}
	if _, ok := first.(*wire.CatchUp); ok {
		return s.sendAll(w, c)
	}
	v, err := s.snapshot(c)
	if err != nil {
		return err
	}
	sess, err := recon.NewSession(v, recon.Config{Community: commBytes})
	if err != nil {
		return err
	}
	in := first
	for {
		out, _, _, done, err := sess.Reconcile(in)
		if errors.Is(err, recon.ErrTooManyRounds) {
			// Not the peer's fault: the Error frame tells it to start a new
			// sync, so close the stream rather than reset it, which would
			// discard the frame.
			s.sessionErr(w, err)
			return nil
		}
		if err != nil {
			return s.sessionErr(w, err)
		}
		if done {
			break
		}
		if err := wire.WriteFrame(w, out); err != nil {
			return err
		}
		if in, err = wire.ReadFrame(br, wire.MaxFrameSize); err != nil {
			return readErr(err)
		}
	}
	if sess.Differed() {
		// The peer may hold records we lack: pull from it in turn.
		s.MemberJoined(c, p)
	}
	// Fetch phase: answer until the initiator closes its side.
	for {
		in, err := wire.ReadFrame(br, wire.MaxFrameSize)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return readErr(err)
		}
		f, ok := in.(*wire.Fetch)
		if !ok {
			return s.unexpected(in)
		}
		raws, err := s.store.GetMany(f.CIDs)
		if err != nil {
			return err
		}
		found := raws[:0]
		for _, raw := range raws {
			if raw != nil && inCommunity(raw, c) {
				found = append(found, raw)
			}
		}
		frames, err := wire.SplitRecords(found)
		if err != nil {
			return err
		}
		for _, fr := range frames {
			if err := wire.WriteFrame(w, fr); err != nil {
				return err
			}
		}
	}
}

// sendAll streams every record of the community, oldest first.
func (s *Service) sendAll(w io.Writer, c cid.Cid) error {
	var ids [][]byte
	flush := func(last bool) error {
		raws, err := s.store.GetMany(ids)
		if err != nil {
			return err
		}
		found := raws[:0]
		for _, raw := range raws {
			if raw != nil {
				found = append(found, raw)
			}
		}
		frames, err := wire.SplitRecords(found)
		if err != nil {
			return err
		}
		for i, fr := range frames {
			fr.More = !last || i < len(frames)-1
			if err := wire.WriteFrame(w, fr); err != nil {
				return err
			}
		}
		ids = ids[:0]
		return nil
	}
	for it, err := range s.store.Items(c) {
		if err != nil {
			return err
		}
		ids = append(ids, it.ID)
		if len(ids) == wire.MaxFetchBatch {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	return flush(true)
}

func inCommunity(raw []byte, c cid.Cid) bool {
	r, err := record.Decode(raw)
	return err == nil && r.Community.Equals(c)
}

// sessionErr sends the session's error frame, if any, and classifies it.
func (s *Service) sessionErr(w io.Writer, err error) error {
	if ef := recon.ErrorFrame(err); ef != nil {
		wire.WriteFrame(w, ef)
	}
	if recon.IsPeerFault(err) {
		return fault("%v", err)
	}
	return err
}

func (s *Service) unexpected(f wire.Frame) error {
	if e, ok := f.(*wire.Error); ok {
		return e
	}
	return fault("unexpected %s frame", f.Type())
}

// readErr classifies a frame read failure: a malformed or oversized frame is
// the peer's fault, a closed stream is not.
func readErr(err error) error {
	if errors.Is(err, wire.ErrBadFrame) {
		return fault("%v", err)
	}
	return err
}
