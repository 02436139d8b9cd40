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
	return spell(&n.mu, &n.peers, p)
}

// community returns c.String().
func (n *names) community(c cid.Cid) string {
	return spell(&n.mu, &n.comms, c)
}

// spell returns id's text from m, or makes it with String and keeps it.
func spell[K interface {
	comparable
	String() string
}](mu *sync.Mutex, m *map[K]string, id K) string {
	mu.Lock()
	s, ok := (*m)[id]
	mu.Unlock()
	if ok {
		return s
	}
	s = id.String()
	mu.Lock()
	if *m == nil || len(*m) >= maxNames {
		*m = map[K]string{}
	}
	(*m)[id] = s
	mu.Unlock()
	return s
}
