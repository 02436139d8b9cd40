package registry

import "sync/atomic"

// subscriber is one Subscribe call's channel.
type subscriber struct {
	ch      chan *Stored
	dropped atomic.Uint64
}

// Subscribe returns a channel that receives every record stored from now
// on, once it is durable, in commit order, and a function that ends the
// subscription and closes the channel.
//
// The committer never waits for a subscriber: when the channel's buffer
// (buf, at least 1) is full, the notification is dropped and counted in
// Stats.NotifyDropped and in Dropped for that channel. A subscriber that
// must not miss anything (reputation, governance) keeps up with a large
// enough buffer and, when its Dropped count grows, recomputes from Query,
// which is the truth. Close closes every subscription.
func (s *Store) Subscribe(buf int) (<-chan *Stored, func()) {
	sub := &subscriber{ch: make(chan *Stored, max(buf, 1))}
	s.subMu.Lock()
	if s.isClosed() {
		close(sub.ch)
	} else {
		s.subs[sub] = struct{}{}
	}
	s.subMu.Unlock()
	return sub.ch, func() {
		s.subMu.Lock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
		s.subMu.Unlock()
	}
}

// Dropped counts the notifications the subscription whose channel is ch
// missed because its buffer was full (0 for a channel that is not, or no
// longer, subscribed). Other subscribers' misses do not count: a slow
// event stream does not make reputation reload the registry.
func (s *Store) Dropped(ch <-chan *Stored) uint64 {
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	for sub := range s.subs {
		if (<-chan *Stored)(sub.ch) == ch {
			return sub.dropped.Load()
		}
	}
	return 0
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// notify hands newly stored records to subscribers without blocking.
func (s *Store) notify(items []*item) {
	if len(items) == 0 {
		return
	}
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	if len(s.subs) == 0 {
		return
	}
	for _, it := range items {
		st := &Stored{Record: it.rec, Raw: it.raw}
		for sub := range s.subs {
			select {
			case sub.ch <- st:
			default:
				s.stats.dropped.Add(1)
				sub.dropped.Add(1)
			}
		}
	}
}
