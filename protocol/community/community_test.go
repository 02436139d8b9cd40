package community

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/protocol/canon"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var testCreated = time.UnixMilli(1767225600000) // 2026-01-01T00:00:00Z

// The golden genesis pins the genesis body encoding; see record's golden
// test for the envelope. Do not update it to make a test pass.
const goldenGenesisCID = "bafyreia4bjftmnycvry6erhhegmzd3vyipjpzrssxmrojulx53wx6pd4oy"

func seedKey(t testing.TB, b byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func idOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func p2pAddr(t testing.TB, base string, k crypto.PrivKey) string {
	t.Helper()
	return base + "/p2p/" + idOf(t, k).String()
}

func testGenesis(t testing.TB, founder crypto.PrivKey) Genesis {
	t.Helper()
	return Genesis{
		Name:        "Home Lab Friends",
		Description: "Agents for home automation.\nBe kind.",
		Founders:    []peer.ID{idOf(t, founder), idOf(t, seedKey(t, 2))},
		Bootstrap:   []string{p2pAddr(t, "/ip4/192.0.2.10/tcp/4242", founder), p2pAddr(t, "/ip6/2001:db8::1/udp/4242/quic-v1", founder)},
		Policy:      DefaultPolicy(),
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Policy{2, 100, 0, 200, 500, 7 * 24 * 3600, 120, 0, 0, 0}
	if p != want {
		t.Fatalf("DefaultPolicy = %+v, want %+v", p, want)
	}
	if p.VoteDuration() != 7*24*time.Hour || p.VoteGrace() != 2*time.Minute {
		t.Fatal("duration helpers")
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		f    func(p *Policy)
		ok   bool
	}{
		{"default", func(p *Policy) {}, true},
		{"min attestations 0", func(p *Policy) { p.CertifyMinAttestations = 0 }, false},
		{"min attestations 1", func(p *Policy) { p.CertifyMinAttestations = 1 }, true},
		{"min attestations 1001", func(p *Policy) { p.CertifyMinAttestations = 1001 }, false},
		{"auditor trust -1", func(p *Policy) { p.CertifyMinAuditorTrust = -1 }, false},
		{"auditor trust 1000", func(p *Policy) { p.CertifyMinAuditorTrust = 1000 }, true},
		{"auditor trust 1001", func(p *Policy) { p.CertifyMinAuditorTrust = 1001 }, false},
		{"delegate trust -1", func(p *Policy) { p.DelegateMinTrust = -1 }, false},
		{"delegate trust 1001", func(p *Policy) { p.DelegateMinTrust = 1001 }, false},
		{"quorum 0", func(p *Policy) { p.VoteQuorum = 0 }, true},
		{"quorum 1001", func(p *Policy) { p.VoteQuorum = 1001 }, false},
		{"threshold 0", func(p *Policy) { p.VoteThreshold = 0 }, false},
		{"threshold 1000", func(p *Policy) { p.VoteThreshold = 1000 }, true},
		{"threshold 1001", func(p *Policy) { p.VoteThreshold = 1001 }, false},
		{"duration 4", func(p *Policy) { p.VoteDurationSeconds = 4 }, false},
		{"duration 5", func(p *Policy) { p.VoteDurationSeconds = 5 }, true},
		{"duration a year", func(p *Policy) { p.VoteDurationSeconds = 365 * 24 * 3600 }, true},
		{"duration over a year", func(p *Policy) { p.VoteDurationSeconds = 365*24*3600 + 1 }, false},
		{"grace -1", func(p *Policy) { p.VoteGraceSeconds = -1 }, false},
		{"grace a day", func(p *Policy) { p.VoteGraceSeconds = 86400 }, true},
		{"grace over a day", func(p *Policy) { p.VoteGraceSeconds = 86401 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.f(&p)
			err := p.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not match ErrInvalidPolicy", err)
			}
		})
	}
}

func TestGenesisValidate(t *testing.T) {
	founder := seedKey(t, 1)
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	many := func(n int) []peer.ID {
		ids := make([]peer.ID, n)
		for i := range ids {
			ids[i] = idOf(t, newKey(t))
		}
		return ids
	}
	addrs := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = p2pAddr(t, fmt.Sprintf("/ip4/192.0.2.%d/tcp/4242", i+1), founder)
		}
		return s
	}
	tests := []struct {
		name string
		f    func(g *Genesis)
		ok   bool
	}{
		{"valid", func(g *Genesis) {}, true},
		{"one char name", func(g *Genesis) { g.Name = "x" }, true},
		{"64 char name", func(g *Genesis) { g.Name = strings.Repeat("x", 64) }, true},
		{"64 multibyte chars", func(g *Genesis) { g.Name = strings.Repeat("é", 64) }, true},
		{"name with inner spaces", func(g *Genesis) { g.Name = "a b  c" }, true},
		{"no description", func(g *Genesis) { g.Description = "" }, true},
		{"1024 char description", func(g *Genesis) { g.Description = strings.Repeat("ü", 1024) }, true},
		{"no bootstrap", func(g *Genesis) { g.Bootstrap = nil }, true},
		{"16 bootstrap", func(g *Genesis) { g.Bootstrap = addrs(16) }, true},
		{"32 founders", func(g *Genesis) { g.Founders = append(many(31), g.Founders[0]) }, true},
		{"circuit bootstrap", func(g *Genesis) {
			g.Bootstrap = []string{p2pAddr(t, p2pAddr(t, "/ip4/192.0.2.1/tcp/4242", seedKey(t, 9))+"/p2p-circuit", founder)}
		}, true},

		{"empty name", func(g *Genesis) { g.Name = "" }, false},
		{"65 char name", func(g *Genesis) { g.Name = strings.Repeat("x", 65) }, false},
		{"name with newline", func(g *Genesis) { g.Name = "a\nb" }, false},
		{"name with escape", func(g *Genesis) { g.Name = "a\x1b[31mb" }, false},
		{"name with bidi override", func(g *Genesis) { g.Name = "a\u202eb" }, false},
		{"name with NUL", func(g *Genesis) { g.Name = "a\x00" }, false},
		{"leading space", func(g *Genesis) { g.Name = " a" }, false},
		{"trailing space", func(g *Genesis) { g.Name = "a " }, false},
		{"invalid utf8 name", func(g *Genesis) { g.Name = "a\xffb" }, false},
		{"1025 char description", func(g *Genesis) { g.Description = strings.Repeat("x", 1025) }, false},
		{"description with escape", func(g *Genesis) { g.Description = "x\x1by" }, false},
		{"description with CR", func(g *Genesis) { g.Description = "x\ry" }, false},
		{"no founders", func(g *Genesis) { g.Founders = nil }, false},
		{"33 founders", func(g *Genesis) { g.Founders = many(33) }, false},
		{"duplicate founder", func(g *Genesis) { g.Founders = append(g.Founders, g.Founders[0]) }, false},
		{"empty founder", func(g *Genesis) { g.Founders = append(g.Founders, "") }, false},
		{"secp256k1 founder", func(g *Genesis) { g.Founders = append(g.Founders, idOf(t, secp)) }, false},
		{"garbage founder", func(g *Genesis) { g.Founders = append(g.Founders, peer.ID("garbage")) }, false},
		{"17 bootstrap", func(g *Genesis) { g.Bootstrap = addrs(17) }, false},
		{"bootstrap without p2p", func(g *Genesis) { g.Bootstrap = []string{"/ip4/192.0.2.1/tcp/4242"} }, false},
		{"bootstrap garbage", func(g *Genesis) { g.Bootstrap = []string{"not an address"} }, false},
		{"bootstrap empty", func(g *Genesis) { g.Bootstrap = []string{""} }, false},
		{"bad policy", func(g *Genesis) { g.Policy.VoteThreshold = 0 }, false},
		{"zero policy", func(g *Genesis) { g.Policy = Policy{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGenesis(t, founder)
			tt.f(&g)
			err := g.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidGenesis) {
				t.Fatalf("error %v does not match ErrInvalidGenesis", err)
			}
		})
	}
}

func TestGenesisRoundTrip(t *testing.T) {
	key := seedKey(t, 1)
	g := testGenesis(t, key)
	rec, err := NewGenesis(key, g, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	opened, err := record.Open(b, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseGenesis(opened)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, g) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, g)
	}
	if opened.CID() != rec.CID() || opened.Community.Defined() || opened.Kind != record.KindCommunity {
		t.Fatal("genesis record fields")
	}
}

func TestGenesisNilEqualsEmpty(t *testing.T) {
	key := seedKey(t, 1)
	g := testGenesis(t, key)
	g.Bootstrap = nil
	a, err := NewGenesis(key, g, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	g.Bootstrap = []string{}
	b, err := NewGenesis(key, g, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	if a.CID() != b.CID() {
		t.Fatal("nil and empty bootstrap give different community IDs")
	}
}

func TestGoldenGenesis(t *testing.T) {
	key := seedKey(t, 1)
	rec, err := NewGenesis(key, testGenesis(t, key), testCreated)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.CID().String(); got != goldenGenesisCID {
		b, _ := rec.Encode()
		t.Fatalf("golden genesis CID = %s, want %s\nencoding %x", got, goldenGenesisCID, b)
	}
}

// The invite format is pinned too: invites are pasted into mail and chat and
// must keep parsing across releases.
const goldenInviteSHA256 = "383a22a7cc29158ea085ac0915f97db07f768171dac01c890a2329ae04861dd0"

func TestGoldenInvite(t *testing.T) {
	inv, _ := testInvite(t)
	s := inv.String()
	sum := sha256.Sum256([]byte(s))
	if got := hex.EncodeToString(sum[:]); got != goldenInviteSHA256 {
		t.Fatalf("golden invite changed: sha256 %s, want %s\n%s", got, goldenInviteSHA256, s)
	}
}

func TestNewGenesisRejects(t *testing.T) {
	key := seedKey(t, 1)
	secp, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	tests := []struct {
		name string
		key  crypto.PrivKey
		f    func(g *Genesis)
		want error
	}{
		{"signer not a founder", newKey(t), func(g *Genesis) {}, ErrInvalidGenesis},
		{"nil key", nil, func(g *Genesis) {}, record.ErrBadAuthor},
		{"secp256k1 key", secp, func(g *Genesis) { g.Founders = append(g.Founders, idOf(t, secp)) }, ErrInvalidGenesis},
		{"invalid genesis", key, func(g *Genesis) { g.Name = "" }, ErrInvalidGenesis},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGenesis(t, key)
			tt.f(&g)
			if _, err := NewGenesis(tt.key, g, testCreated); !errors.Is(err, tt.want) {
				t.Fatalf("NewGenesis = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseGenesisRejects(t *testing.T) {
	key := seedKey(t, 1)
	g := testGenesis(t, key)
	genesis, err := NewGenesis(key, g, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(k crypto.PrivKey, kind record.Kind, community cid.Cid, body any) *record.Record {
		t.Helper()
		r, err := record.Sign(k, kind, community, body, testCreated)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	withExtra := map[string]any{
		"name": g.Name, "description": g.Description, "founders": [][]byte{[]byte(g.Founders[0])},
		"bootstrap": []string{}, "policy": g.Policy, "extra": 1,
	}
	bad := g
	bad.Policy.VoteQuorum = 5000
	tests := []struct {
		name string
		rec  *record.Record
	}{
		{"nil", nil},
		{"wrong kind", sign(key, record.KindVote, genesis.CID(), g.toWire())},
		{"names a community", sign(key, record.KindCommunity, genesis.CID(), g.toWire())},
		{"unknown body field", sign(key, record.KindCommunity, cid.Undef, withExtra)},
		{"wrong body type", sign(key, record.KindCommunity, cid.Undef, map[string]any{"name": 1})},
		{"author not a founder", sign(newKey(t), record.KindCommunity, cid.Undef, g.toWire())},
		{"invalid body", sign(key, record.KindCommunity, cid.Undef, bad.toWire())},
		{"empty body", sign(key, record.KindCommunity, cid.Undef, map[string]any{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseGenesis(tt.rec); !errors.Is(err, ErrInvalidGenesis) {
				t.Fatalf("ParseGenesis = %v, want ErrInvalidGenesis", err)
			}
		})
	}
}

func testInvite(t testing.TB) (Invite, crypto.PrivKey) {
	t.Helper()
	key := seedKey(t, 1)
	rec, err := NewGenesis(key, testGenesis(t, key), testCreated)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []ma.Multiaddr
	for _, s := range []string{"/ip4/198.51.100.7/tcp/4242", "/ip4/198.51.100.7/udp/4242/quic-v1", "/dns4/agora.example.org/tcp/4242"} {
		addrs = append(addrs, ma.StringCast(p2pAddr(t, s, seedKey(t, 3))))
	}
	return Invite{Genesis: rec, Addrs: addrs}, key
}

func TestInviteRoundTrip(t *testing.T) {
	inv, _ := testInvite(t)
	s := inv.String()
	if !strings.HasPrefix(s, InvitePrefix) {
		t.Fatalf("invite %q", s)
	}
	for _, variant := range []string{
		s,
		"  " + s + "\n",
		"Agora-Invite:" + s[len(InvitePrefix):],
		wrap(s, 60), // as a mail client might break it
	} {
		got, err := ParseInvite(variant, testCreated)
		if err != nil {
			t.Fatalf("ParseInvite = %v", err)
		}
		if got.ID() != inv.ID() || got.ID() != inv.Genesis.CID() {
			t.Fatal("community ID changed")
		}
		if len(got.Addrs) != len(inv.Addrs) {
			t.Fatalf("addrs = %v", got.Addrs)
		}
		for i := range got.Addrs {
			if !got.Addrs[i].Equal(inv.Addrs[i]) {
				t.Fatalf("addr %d = %s, want %s", i, got.Addrs[i], inv.Addrs[i])
			}
		}
		if got.String() != s {
			t.Fatal("re-encoding changed the invite")
		}
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func TestInviteNoAddrs(t *testing.T) {
	inv, _ := testInvite(t)
	inv.Addrs = nil
	got, err := ParseInvite(inv.String(), testCreated)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Addrs) != 0 {
		t.Fatal("addrs appeared")
	}
}

func TestInviteEncodeRejects(t *testing.T) {
	inv, key := testInvite(t)
	vote, err := record.Sign(key, record.KindVote, inv.ID(), map[string]int{"x": 1}, testCreated)
	if err != nil {
		t.Fatal(err)
	}
	forged := *inv.Genesis
	forged.Sig = bytes.Clone(forged.Sig)
	forged.Sig[0] ^= 1
	tests := []struct {
		name string
		inv  Invite
	}{
		{"no genesis", Invite{}},
		{"not a genesis", Invite{Genesis: vote}},
		{"bad signature", Invite{Genesis: &forged}},
		{"address without p2p", Invite{Genesis: inv.Genesis, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/1")}}},
		{"empty address", Invite{Genesis: inv.Genesis, Addrs: []ma.Multiaddr{nil}}},
		{"too many addresses", Invite{Genesis: inv.Genesis, Addrs: repeatAddr(inv.Addrs[0], MaxInviteAddrs+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := tt.inv.Encode(); err == nil {
				t.Fatalf("Encode = %q, want error", s)
			}
			if s := tt.inv.String(); s != "" {
				t.Fatalf("String = %q, want empty", s)
			}
		})
	}
}

func repeatAddr(a ma.Multiaddr, n int) []ma.Multiaddr {
	out := make([]ma.Multiaddr, n)
	for i := range out {
		out[i] = a
	}
	return out
}

// encodeInvite builds an invite string from parts, bypassing Encode's checks.
func encodeInvite(t testing.TB, genesis []byte, addrs [][]byte) string {
	t.Helper()
	b, err := canon.Marshal(inviteWire{Genesis: genesis, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(append(b, inviteCheck(b)...))
}

func TestParseInviteRejects(t *testing.T) {
	inv, key := testInvite(t)
	good := inv.String()
	raw, _ := inv.Genesis.Encode()
	addr := inv.Addrs[0].Bytes()
	g, _ := ParseGenesis(inv.Genesis)
	founder := idOf(t, key)
	attacker := newKey(t)

	// Re-signed by another key with the author set to the real founder.
	resigned, err := record.Sign(attacker, record.KindCommunity, cid.Undef, g.toWire(), testCreated)
	if err != nil {
		t.Fatal(err)
	}
	claimed := &record.Record{V: resigned.V, Kind: resigned.Kind, Author: founder, Created: resigned.Created, Body: resigned.Body, Sig: resigned.Sig}
	claimedRaw, err := claimed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Signed by another key as itself: the author is not a founder.
	selfRaw, _ := resigned.Encode()
	// A genesis from the future.
	future, err := NewGenesis(key, g, testCreated.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	futureRaw, _ := future.Encode()
	vote, _ := record.Sign(key, record.KindVote, inv.ID(), map[string]int{"x": 1}, testCreated)
	voteRaw, _ := vote.Encode()
	// Changing the name in the body breaks the signature.
	renamed := strings.Replace(string(raw), "Home Lab Friends", "Home Lab Fiends!", 1)
	noP2P := ma.StringCast("/ip4/192.0.2.1/tcp/4242").Bytes()

	tests := []struct {
		name  string
		in    string
		cause error // also matched, if set
	}{
		{"empty", "", nil},
		{"only prefix", InvitePrefix, nil},
		{"bad prefix", "agora-invitation:" + good[len(InvitePrefix):], nil},
		{"no prefix", good[len(InvitePrefix):], nil},
		{"a URL", "https://example.org/invite", nil},
		{"bad base64", InvitePrefix + "!!!!", nil},
		{"standard base64", InvitePrefix + base64.RawStdEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0, 0, 0, 0}), nil},
		{"padded", good + "==", nil},
		{"truncated", good[:len(good)-10], nil},
		{"extra char", good + "A", nil},
		{"oversize", InvitePrefix + strings.Repeat("A", MaxInviteLen), nil},
		{"bad checksum", flipChar(good, len(good)-2), nil},
		{"not cbor", InvitePrefix + base64.RawURLEncoding.EncodeToString(append([]byte("hello"), inviteCheck([]byte("hello"))...)), nil},
		{"unknown field", unknownFieldInvite(t, raw), nil},
		{"genesis garbage", encodeInvite(t, []byte{1, 2, 3}, nil), record.ErrMalformed},
		{"genesis tampered", encodeInvite(t, []byte(renamed), nil), record.ErrBadSignature},
		{"re-signed claiming founder", encodeInvite(t, claimedRaw, nil), record.ErrBadSignature},
		{"signed by non-founder", encodeInvite(t, selfRaw, nil), ErrInvalidGenesis},
		{"from the future", encodeInvite(t, futureRaw, nil), record.ErrFromFuture},
		{"not a genesis", encodeInvite(t, voteRaw, nil), ErrInvalidGenesis},
		{"address without p2p", encodeInvite(t, raw, [][]byte{addr, noP2P}), nil},
		{"address garbage", encodeInvite(t, raw, [][]byte{{0xff, 0xff}}), nil},
		{"address empty", encodeInvite(t, raw, [][]byte{{}}), nil},
		{"too many addresses", encodeInvite(t, raw, bytes.SplitAfter(bytes.Repeat(addr, MaxInviteAddrs+1), addr)[:MaxInviteAddrs+1]), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInvite(tt.in, testCreated)
			if !errors.Is(err, ErrInvalidInvite) {
				t.Fatalf("ParseInvite = %v, want ErrInvalidInvite", err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("ParseInvite = %v, want it to wrap %v", err, tt.cause)
			}
			if !strings.HasPrefix(err.Error(), "this") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not a user-facing sentence: %q", err)
			}
		})
	}
}

func TestParseInviteMessages(t *testing.T) {
	_, err := ParseInvite("hello", testCreated)
	want := `this is not an Agora invite: it should start with "agora-invite:"; ask the member who sent it for a fresh one`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
}

func unknownFieldInvite(t testing.TB, raw []byte) string {
	t.Helper()
	b, err := canon.Marshal(map[string]any{"genesis": raw, "addrs": [][]byte{}, "note": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(append(b, inviteCheck(b)...))
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func flipChar(s string, i int) string {
	c := s[i]
	j := strings.IndexByte(b64url, c)
	return s[:i] + string(b64url[(j+1)%len(b64url)]) + s[i+1:]
}

// Any single changed character must be caught, in the genesis (signature)
// or anywhere else (checksum).
func TestInviteEveryCharFlipRejected(t *testing.T) {
	inv, _ := testInvite(t)
	s := inv.String()
	for i := len(InvitePrefix); i < len(s); i++ {
		for _, step := range []int{1, 17, 32} {
			c := s[i]
			j := strings.IndexByte(b64url, c)
			mut := s[:i] + string(b64url[(j+step)%len(b64url)]) + s[i+1:]
			if _, err := ParseInvite(mut, testCreated); err == nil {
				t.Fatalf("changing character %d (%c) by %d was accepted", i, c, step)
			}
		}
	}
}

// An attacker can make a valid invite to a community of their own that
// copies everything but the founders; it is a different community.
func TestInviteCopiedCommunityHasOtherID(t *testing.T) {
	inv, _ := testInvite(t)
	g, _ := ParseGenesis(inv.Genesis)
	attacker := newKey(t)
	g.Founders = append(g.Founders, idOf(t, attacker))
	rec, err := NewGenesis(attacker, g, inv.Genesis.CreatedTime())
	if err != nil {
		t.Fatal(err)
	}
	copied, err := ParseInvite(Invite{Genesis: rec, Addrs: inv.Addrs}.String(), testCreated)
	if err != nil {
		t.Fatal(err)
	}
	if copied.ID() == inv.ID() {
		t.Fatal("copied community has the same ID")
	}
}

func TestTopics(t *testing.T) {
	inv, _ := testInvite(t)
	id := inv.ID()
	if got, want := AdvertsTopic(id), "agora/"+id.String()+"/adverts/1"; got != want {
		t.Fatalf("AdvertsTopic = %q", got)
	}
	if got, want := RecordsTopic(id), "agora/"+id.String()+"/records/1"; got != want {
		t.Fatalf("RecordsTopic = %q", got)
	}
	if !strings.HasPrefix(id.String(), "bafyrei") {
		t.Fatalf("community ID %s is not base32 dag-cbor sha2-256", id)
	}
}

func FuzzParseInvite(f *testing.F) {
	inv, _ := testInvite(f)
	s := inv.String()
	f.Add(s)
	f.Add(wrap(s, 40))
	inv.Addrs = nil
	f.Add(inv.String())
	f.Add("")
	f.Add(InvitePrefix)
	f.Add(InvitePrefix + "oA")
	f.Add("agora-invite:!!")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseInvite(s, testCreated)
		if err != nil {
			if !errors.Is(err, ErrInvalidInvite) {
				t.Fatalf("error %v does not match ErrInvalidInvite", err)
			}
			return
		}
		if _, err := ParseGenesis(got.Genesis); err != nil {
			t.Fatalf("accepted invite has an invalid genesis: %v", err)
		}
		again, err := ParseInvite(got.String(), testCreated)
		if err != nil {
			t.Fatalf("re-encoded invite rejected: %v", err)
		}
		if again.ID() != got.ID() {
			t.Fatal("re-encoding changed the community ID")
		}
	})
}

// FuzzParseGenesis decodes arbitrary bytes as a genesis body.
func FuzzParseGenesis(f *testing.F) {
	key := seedKey(f, 1)
	g := testGenesis(f, key)
	rec, err := NewGenesis(key, g, testCreated)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(rec.Body))
	g.Bootstrap = nil
	g.Description = ""
	small, _ := canon.Marshal(g.toWire())
	f.Add(small)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &record.Record{V: record.Version, Kind: record.KindCommunity, Author: idOf(t, key), Created: 1, Body: body}
		got, err := ParseGenesis(r)
		if err != nil {
			if !errors.Is(err, ErrInvalidGenesis) {
				t.Fatalf("error %v does not match ErrInvalidGenesis", err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted genesis is invalid: %v", err)
		}
		if _, err := NewGenesis(key, got, testCreated); err != nil {
			t.Fatalf("accepted genesis cannot be signed again: %v", err)
		}
	})
}

// FuzzInvitePayload gets past the checksum to reach the CBOR, record and
// multiaddr decoders behind it.
func FuzzInvitePayload(f *testing.F) {
	inv, _ := testInvite(f)
	s := inv.String()
	b, err := base64.RawURLEncoding.DecodeString(s[len(InvitePrefix):])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:len(b)-inviteCheckLen])
	raw, _ := inv.Genesis.Encode()
	small, _ := canon.Marshal(inviteWire{Genesis: raw, Addrs: [][]byte{{0x04, 127, 0, 0, 1}}})
	f.Add(small)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		s := InvitePrefix + base64.RawURLEncoding.EncodeToString(append(bytes.Clone(payload), inviteCheck(payload)...))
		got, err := ParseInvite(s, testCreated)
		if err != nil {
			if !errors.Is(err, ErrInvalidInvite) {
				t.Fatalf("error %v does not match ErrInvalidInvite", err)
			}
			return
		}
		if got.String() == "" {
			t.Fatal("accepted invite cannot be encoded again")
		}
	})
}
