//go:build linux

// Package netns is Agora's multi-host testbed: real agora daemons, each in
// its own Linux network namespace, joined by an emulated network whose
// links have delay, jitter, loss and a rate, and which can be partitioned
// and healed.
//
// The links are emulated in user space (Fabric) rather than with tc netem:
// the kernels of the machines this project is tested on are built without
// sch_netem (CONFIG_NET_SCH_NETEM is not set), and a user-space switch is
// also easier to partition exactly and to count. Each namespace gets a TUN
// device; the Fabric reads the IPv4 packets a host sends, drops or delays
// them as the link says, and writes them into the destination's TUN.
//
// The scenarios live in the package's tests; docs/testing.md says what each
// proves and how to add one.
package netns

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Link is how packets between two hosts travel, in one direction: each is
// delayed by Delay ± Jitter (uniformly), lost with probability Loss, and
// serialised at Rate bytes per second (0: unlimited). Packets of one link
// keep their order, as on a real path.
type Link struct {
	Delay  time.Duration
	Jitter time.Duration
	Loss   float64
	Rate   int64
}

// String describes the link for a scenario's report.
func (l Link) String() string {
	s := fmt.Sprintf("%v ± %v, %.1f%% loss", l.Delay, l.Jitter, l.Loss*100)
	if l.Rate > 0 {
		s += fmt.Sprintf(", %d kbit/s", l.Rate*8/1000)
	}
	return s
}

// FabricStats counts what the fabric did with the packets it read.
type FabricStats struct {
	Forwarded, Lost, Partitioned, Unroutable, Overflow uint64
}

// Fabric is a user-space IPv4 switch between TUN devices.
type Fabric struct {
	mu     sync.Mutex
	ports  map[[4]byte]*port
	byIdx  map[int]*port
	links  map[[2]int]*linkQueue
	egress map[int]Link // a host's own links (its uplink), by port index
	// down is a host's downlink rate (bytes a second, by port index), which
	// the packets of every sender to it share; downFree is when its
	// downlink has taken the previous packet.
	down     map[int]int64
	downFree map[int]time.Time
	dflt     Link
	cut      map[[2]int]bool
	rnd      *rand.Rand
	closed   bool
	wg       sync.WaitGroup

	forwarded, lost, partitioned, unroutable, overflow atomic.Uint64
}

type port struct {
	idx int
	ip  [4]byte
	f   *os.File
}

type timed struct {
	at time.Time
	b  []byte
}

type linkQueue struct {
	ch   chan timed
	last time.Time // when the previous packet arrives: keeps the link in order
	free time.Time // when the link has sent the previous packet (Rate)
}

// NewFabric makes a fabric whose links are all dflt until SetLink says
// otherwise. seed makes loss and jitter repeatable.
func NewFabric(dflt Link, seed uint64) *Fabric {
	return &Fabric{ports: map[[4]byte]*port{}, byIdx: map[int]*port{}, links: map[[2]int]*linkQueue{},
		egress: map[int]Link{}, down: map[int]int64{}, downFree: map[int]time.Time{}, dflt: dflt, cut: map[[2]int]bool{}, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetLink sets the link for every packet host idx sends (its uplink).
func (f *Fabric) SetLink(idx int, l Link) {
	f.mu.Lock()
	f.egress[idx] = l
	f.mu.Unlock()
}

// SetDownlink limits the rate (bytes a second, 0: unlimited) at which host
// idx receives, from all senders together: a home line's download side.
// A packet to it leaves its sender's link no sooner than the downlink has
// taken the previous one.
func (f *Fabric) SetDownlink(idx int, rate int64) {
	f.mu.Lock()
	f.down[idx] = rate
	f.mu.Unlock()
}

// Partition cuts every pair of hosts that are in different groups; hosts in
// no group keep their links. It replaces any earlier partition.
func (f *Fabric) Partition(groups ...[]int) {
	side := map[int]int{}
	for g, hs := range groups {
		for _, h := range hs {
			side[h] = g
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = map[[2]int]bool{}
	for a, ga := range side {
		for b, gb := range side {
			if ga != gb {
				f.cut[[2]int{a, b}] = true
			}
		}
	}
}

// Heal restores every cut link.
func (f *Fabric) Heal() {
	f.mu.Lock()
	f.cut = map[[2]int]bool{}
	f.mu.Unlock()
}

// Stats returns the counters.
func (f *Fabric) Stats() FabricStats {
	return FabricStats{Forwarded: f.forwarded.Load(), Lost: f.lost.Load(), Partitioned: f.partitioned.Load(),
		Unroutable: f.unroutable.Load(), Overflow: f.overflow.Load()}
}

// Attach opens a TUN device named ifname inside the network namespace ns
// (a name under /run/netns) and switches the packets it sends; ip is the
// address the host will have on it. The device exists while the fabric
// holds it open.
func (f *Fabric) Attach(idx int, ns, ifname string, ip [4]byte) error {
	file, err := openTUN(ns, ifname)
	if err != nil {
		return err
	}
	p := &port{idx: idx, ip: ip, f: file}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		file.Close()
		return fmt.Errorf("the fabric is closed")
	}
	f.ports[ip] = p
	f.byIdx[idx] = p
	f.wg.Add(1)
	f.mu.Unlock()
	go f.read(p)
	return nil
}

// Close stops switching and closes every TUN device.
func (f *Fabric) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	for _, p := range f.ports {
		p.f.Close()
	}
	for _, q := range f.links {
		close(q.ch)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// queueLen bounds a link's queue, like a router's buffer: a packet that
// finds it full is dropped (counted as overflow).
const queueLen = 8192

func (f *Fabric) read(p *port) {
	defer f.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := p.f.Read(buf)
		if err != nil {
			return // closed
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue // not IPv4 (router solicitations and the like)
		}
		f.forward(p, buf[:n])
	}
}

func (f *Fabric) forward(src *port, pkt []byte) {
	dst := [4]byte(pkt[16:20])
	now := time.Now()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	to := f.ports[dst]
	switch {
	case to == nil:
		f.mu.Unlock()
		f.unroutable.Add(1)
		return
	case f.cut[[2]int{src.idx, to.idx}]:
		f.mu.Unlock()
		f.partitioned.Add(1)
		return
	}
	l, ok := f.egress[src.idx]
	if !ok {
		l = f.dflt
	}
	if l.Loss > 0 && f.rnd.Float64() < l.Loss {
		f.mu.Unlock()
		f.lost.Add(1)
		return
	}
	d := l.Delay
	if l.Jitter > 0 {
		d += time.Duration(f.rnd.Int64N(int64(2*l.Jitter)+1)) - l.Jitter
	}
	key := [2]int{src.idx, to.idx}
	q := f.links[key]
	if q == nil {
		q = &linkQueue{ch: make(chan timed, queueLen)}
		f.links[key] = q
		f.wg.Add(1)
		go f.deliver(q, to)
	}
	leave := now
	if l.Rate > 0 {
		// Serialisation: the packet leaves once the previous one has.
		leave = later(now, q.free).Add(time.Duration(int64(len(pkt)) * int64(time.Second) / l.Rate))
	}
	if r := f.down[to.idx]; r > 0 {
		leave = later(leave, f.downFree[to.idx]).Add(time.Duration(int64(len(pkt)) * int64(time.Second) / r))
	}
	at := later(leave.Add(d), q.last)
	b := make([]byte, len(pkt))
	copy(b, pkt)
	select {
	case q.ch <- timed{at, b}:
		q.last, q.free = at, leave
		if f.down[to.idx] > 0 {
			f.downFree[to.idx] = leave
		}
		f.forwarded.Add(1)
	default:
		f.overflow.Add(1)
	}
	f.mu.Unlock()
}

// deliver writes a link's packets into the destination when they are due.
func (f *Fabric) deliver(q *linkQueue, to *port) {
	defer f.wg.Done()
	t := time.NewTimer(0)
	<-t.C
	for p := range q.ch {
		if d := time.Until(p.at); d > 0 {
			t.Reset(d)
			<-t.C
		}
		// A write fails only once the fabric is closing; the packet is lost
		// as it would be on a link going down.
		_, _ = to.f.Write(p.b)
	}
}

// openTUN creates a TUN device inside a network namespace. The goroutine
// that enters the namespace keeps its OS thread locked and ends, so Go
// discards the thread instead of reusing it in the wrong namespace.
func openTUN(ns, ifname string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		nsf, err := os.Open("/run/netns/" + ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("enter namespace %s: %w", ns, err)}
			return
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			ch <- result{nil, fmt.Errorf("open /dev/net/tun: %w", err)}
			return
		}
		ifr, err := unix.NewIfreq(ifname)
		if err != nil {
			unix.Close(fd)
			ch <- result{nil, err}
			return
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			ch <- result{nil, fmt.Errorf("create TUN %s in %s: %w", ifname, ns, err)}
			return
		}
		ch <- result{os.NewFile(uintptr(fd), "tun:"+ns), nil}
	}()
	r := <-ch
	return r.f, r.err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
