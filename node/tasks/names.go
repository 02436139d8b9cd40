package tasks

import (
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// names caches the text forms of peer and community IDs. Base58 and base32
// encodings cost microseconds each, and every task spells the same few IDs
// several times (its peers in its events and receipt, its community), on
// both ends of the delegation's round trip. The cache forgets everything
// when it holds maxNames of a kind, so it stays small on a node that meets
// many peers.
type names struct {
	mu    sync.Mutex
	peers map[peer.ID]string
	comms map[cid.Cid]string
}

const maxNames = 4096

var idText names

// peer returns p.String(), "" for "".
func (n *names) peer(p peer.ID) string {
	if p == "" {
		return ""
	}
	n.mu.Lock()
	s, ok := n.peers[p]
	n.mu.Unlock()
	if ok {
		return s
	}
	s = p.String()
	n.mu.Lock()
	if n.peers == nil || len(n.peers) >= maxNames {
		n.peers = map[peer.ID]string{}
	}
	n.peers[p] = s
	n.mu.Unlock()
	return s
}

// community returns c.String().
func (n *names) community(c cid.Cid) string {
	n.mu.Lock()
	s, ok := n.comms[c]
	n.mu.Unlock()
	if ok {
		return s
	}
	s = c.String()
	n.mu.Lock()
	if n.comms == nil || len(n.comms) >= maxNames {
		n.comms = map[cid.Cid]string{}
	}
	n.comms[c] = s
	n.mu.Unlock()
	return s
}
