// Command agora-hostile is the testbed's hostile member: it takes the
// identity of a node that joined a community honestly and then breaks every
// rule it can against the other members — task floods and malformed task
// frames, garbage on the sync protocol, forged, oversized, replayed,
// wrong-community and malformed records on the community's topics — and
// finally tries to reconnect. It prints what it did and what came back as
// one JSON object on stdout; the netns scenario checks the members' side.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	mh "github.com/multiformats/go-multihash"

	"github.com/agora-p2p/agora/node/communities"
	"github.com/agora-p2p/agora/node/repo"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/recon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
)

// Report is what the hostile host prints.
type Report struct {
	PeerID string `json:"peer_id"`
	// Sent counts what it sent, by kind.
	Sent map[string]int `json:"sent"`
	// BadCIDs are the CIDs of the invalid records that decode: none may
	// be stored by anyone.
	BadCIDs []string `json:"bad_cids"`
	// TaskReplies counts the first reply to each flooded task request:
	// "accepted", "rejected:<code>", or "error".
	TaskReplies map[string]int `json:"task_replies"`
	// Reconnect is, per member, whether a fresh connection succeeded
	// after the attack ("ok") or why not.
	Reconnect map[string]string `json:"reconnect"`
	Errors    []string          `json:"errors,omitempty"`
}

func main() {
	repoDir := flag.String("repo", "", "repo whose identity to use (its daemon must be stopped)")
	comm := flag.String("community", "", "community ID")
	peers := flag.String("peers", "", "comma-separated multiaddrs of members, each ending in /p2p/<id>")
	listen := flag.String("listen", "/ip4/0.0.0.0/tcp/4001", "multiaddr to listen on")
	flood := flag.Int("flood", 1000, "task requests to flood with")
	flag.Parse()
	if err := run(*repoDir, *comm, *peers, *listen, *flood); err != nil {
		fmt.Fprintln(os.Stderr, "agora-hostile:", err)
		os.Exit(1)
	}
}

// connect connects to a member, trying again a few times: the member may be
// dialing this host at the same moment (it is a member too), and two TCP
// dials that cross can fail the security handshake on both sides. A
// connection that the member's own dial made counts.
func connect(ctx context.Context, h host.Host, m peer.AddrInfo) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
			if h.Network().Connectedness(m.ID) == network.Connected {
				return nil
			}
			if sw, ok := h.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(m.ID)
			}
		}
		if err = h.Connect(ctx, m); err == nil {
			return nil
		}
	}
	return err
}

func run(repoDir, commID, peerList, listen string, flood int) error {
	key, err := repo.ReadKey(repoDir)
	if err != nil {
		return err
	}
	comm, err := cid.Decode(commID)
	if err != nil {
		return fmt.Errorf("community: %w", err)
	}
	var members []peer.AddrInfo
	for _, s := range strings.Split(peerList, ",") {
		ai, err := peer.AddrInfoFromString(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("peer %q: %w", s, err)
		}
		members = append(members, *ai)
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(listen))
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep := &Report{PeerID: h.ID().String(), Sent: map[string]int{}, TaskReplies: map[string]int{}, Reconnect: map[string]string{}}
	for _, m := range members {
		if err := connect(ctx, h, m); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("connect %s: %v", m.ID, err))
		}
	}

	floodTasks(ctx, h, members, comm, flood, rep)
	badTaskFrames(ctx, h, members, rep)
	if err := badGossip(ctx, h, key, comm, rep); err != nil {
		rep.Errors = append(rep.Errors, "gossip: "+err.Error())
	}
	badSync(ctx, h, members, rep)

	// Try to come back.
	for _, m := range members {
		h.Network().ClosePeer(m.ID)
	}
	for _, m := range members {
		h.Peerstore().ClearAddrs(m.ID)
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := h.Connect(c, m)
		cancel()
		if err == nil {
			// A gater that refuses after the handshake closes at once.
			s, serr := h.NewStream(ctx, m.ID, task.ProtocolID)
			if serr == nil {
				s.Reset()
				rep.Reconnect[m.ID.String()] = "ok"
				continue
			}
			err = serr
		}
		rep.Reconnect[m.ID.String()] = "refused: " + err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// floodTasks sends n valid-looking text.stats requests, all at once, spread
// over the members, and records each first reply.
func floodTasks(ctx context.Context, h host.Host, members []peer.AddrInfo, comm cid.Cid, n int, rep *Report) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := members[i%len(members)]
			reply := "error"
			defer func() { mu.Lock(); rep.TaskReplies[reply]++; mu.Unlock() }()
			c, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			s, err := h.NewStream(c, m.ID, task.ProtocolID)
			if err != nil {
				return
			}
			defer s.Reset()
			s.SetDeadline(time.Now().Add(20 * time.Second))
			req := &task.Request{ID: fmt.Sprintf("flood-%08d", i), Community: comm, Skill: "text.stats",
				Input: []byte(`{"text":"flood"}`), Deadline: time.Now().Add(20 * time.Second).UnixMilli()}
			if err := task.Write(s, req); err != nil {
				return
			}
			f, err := task.Read(s, 1<<20)
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *task.Accepted:
				reply = "accepted"
			case *task.Rejected:
				reply = "rejected:" + f.Code
			default:
				reply = f.Type().String()
			}
		}()
	}
	wg.Wait()
	rep.Sent["task-request"] += n
}

// badTaskFrames sends frames that do not decode, and a length prefix far
// over the cap.
func badTaskFrames(ctx context.Context, h host.Host, members []peer.AddrInfo, rep *Report) {
	for _, m := range members {
		for _, junk := range [][]byte{
			{0x05, 0xff, 0xff, 0xff, 0xff, 0xff},                    // a frame of garbage
			{0xff, 0xff, 0xff, 0xff, 0x0f},                          // a length of 4 GiB
			append([]byte{0x20}, bytes.Repeat([]byte{0xa1}, 32)...), // CBOR maps nested without end
		} {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := h.NewStream(c, m.ID, task.ProtocolID)
			cancel()
			if err != nil {
				continue
			}
			s.SetDeadline(time.Now().Add(5 * time.Second))
			s.Write(junk)
			io.Copy(io.Discard, s)
			s.Reset()
			rep.Sent["task-malformed"]++
		}
	}
}

// badSync opens sync sessions and sends garbage instead of frames.
func badSync(ctx context.Context, h host.Host, members []peer.AddrInfo, rep *Report) {
	for _, m := range members {
		for _, junk := range [][]byte{
			{0xff, 0xff, 0xff, 0xff, 0x0f},
			append([]byte{0x10}, bytes.Repeat([]byte{0x00}, 16)...),
		} {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			s, err := h.NewStream(c, m.ID, recon.ProtocolID)
			cancel()
			if err != nil {
				continue
			}
			s.SetDeadline(time.Now().Add(5 * time.Second))
			s.Write(junk)
			io.Copy(io.Discard, s)
			s.Reset()
			rep.Sent["sync-garbage"]++
		}
	}
}

// badGossip joins the community's topics and publishes every kind of bad
// record, plus a replay of an honest one.
func badGossip(ctx context.Context, h host.Host, key crypto.PrivKey, comm cid.Cid, rep *Report) error {
	// It speaks the community topics' protocol (unsigned messages, content
	// IDs), as a member's software would: what it sends gets past gossipsub
	// to Agora's validators.
	ps, err := pubsub.NewGossipSub(ctx, h, append(communities.PubSubOptions(), pubsub.WithMaxMessageSize(128<<10),
		pubsub.WithFloodPublish(true))...) // to every topic peer at once, as members publish: no waiting for a mesh
	if err != nil {
		return err
	}
	records, err := ps.Join(community.RecordsTopic(comm))
	if err != nil {
		return err
	}
	adverts, err := ps.Join(community.AdvertsTopic(comm))
	if err != nil {
		return err
	}
	sub, err := records.Subscribe()
	if err != nil {
		return err
	}
	defer sub.Cancel()
	// Wait (at most 10 s) until every member still connected is known to
	// be on both topics, so that each of them receives the bad records.
	wait, stopWait := context.WithTimeout(ctx, 10*time.Second)
	for wait.Err() == nil && !onTopics(h, records, adverts) {
		c, cancel := context.WithTimeout(wait, 200*time.Millisecond)
		sub.Next(c) // waits without spinning
		cancel()
	}
	stopWait()

	att := func(evidence string) body.Attestation {
		return body.Attestation{Subject: body.Subject{Type: body.SubjectPeer, ID: h.ID().String()},
			Predicate: "https://agora.example/hostile/v1", Verdict: body.VerdictPass,
			Claims: map[string]string{"n": fmt.Sprint(time.Now().UnixNano())}, Evidence: evidence}
	}
	bad := map[string][]byte{}
	var cids []string
	decodable := func(kind string, raw []byte) {
		bad[kind] = raw
		if r, err := record.Decode(raw); err == nil {
			cids = append(cids, r.CID().String())
		}
	}
	now := time.Now()
	// Forged: a valid record whose author is swapped for another member's.
	if r, err := record.Sign(key, record.KindAttestation, comm, att(""), now); err == nil {
		raw, _ := r.Encode()
		other := victimID(h)
		decodable("forged", bytes.Replace(raw, []byte(h.ID()), []byte(other), 1))
	}
	// Oversized: evidence over the body's 4 KiB, and a record over the
	// 64 KiB envelope limit.
	if r, err := record.Sign(key, record.KindAttestation, comm, att(strings.Repeat("x", 8<<10)), now); err == nil {
		raw, _ := r.Encode()
		decodable("oversized-body", raw)
	}
	huge := make([]byte, record.MaxSize+1024)
	rand.Read(huge)
	bad["oversized-record"] = huge
	// Wrong community: signed for a community that is not this one.
	if other, err := randomCommunity(); err == nil {
		if r, err := record.Sign(key, record.KindAttestation, other, att(""), now); err == nil {
			raw, _ := r.Encode()
			decodable("wrong-community", raw)
		}
	}
	// Malformed: bytes that are not CBOR at all.
	junk := make([]byte, 300)
	rand.Read(junk)
	bad["malformed"] = junk

	for _, t := range []*pubsub.Topic{records, adverts} {
		for _, kind := range []string{"forged", "oversized-body", "wrong-community", "malformed", "oversized-record"} {
			raw, ok := bad[kind]
			if !ok {
				rep.Errors = append(rep.Errors, "could not build "+kind)
				continue
			}
			if err := t.Publish(ctx, raw); err == nil {
				rep.Sent["gossip-"+kind]++
			}
		}
	}
	// Replayed: an honest member's record, sent back (duplicates count for
	// nothing, but may not be stored twice either).
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	if m, err := sub.Next(c); err == nil && m.ReceivedFrom != h.ID() {
		if records.Publish(ctx, m.Data) == nil {
			rep.Sent["gossip-replayed"]++
		}
	}
	cancel()
	rep.BadCIDs = cids
	// Give gossipsub a moment to hand the messages over before the host
	// closes connections for the reconnect test.
	for range 20 {
		if len(h.Network().Peers()) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// onTopics reports whether every connected peer is on each topic.
func onTopics(h host.Host, topics ...*pubsub.Topic) bool {
	conns := h.Network().Peers()
	for _, t := range topics {
		on := map[peer.ID]bool{}
		for _, p := range t.ListPeers() {
			on[p] = true
		}
		for _, p := range conns {
			if !on[p] {
				return false
			}
		}
	}
	return len(conns) > 0
}

// victimID returns a connected peer's ID, for forging records in its name.
func victimID(h host.Host) peer.ID {
	for _, p := range h.Network().Peers() {
		return p
	}
	return h.ID()
}

func randomCommunity() (cid.Cid, error) {
	b := make([]byte, 32)
	rand.Read(b)
	sum, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.DagCBOR, sum), nil
}
