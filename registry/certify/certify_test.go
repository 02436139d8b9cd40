package certify

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	subj  = "skill:text.summarize"
	other = "skill:text.translate"
	pred  = "agora:audit/deterministic/v1"
	now   = int64(1_000_000)
)

var (
	alice = peer.ID("alice")
	bob   = peer.ID("bob")
	carol = peer.ID("carol")
	mal   = peer.ID("mallory") // below the trust floor
)

// levels are community trust levels in thousandths; policy's floor is 100.
func level(id peer.ID) int64 {
	return map[peer.ID]int64{alice: 300, bob: 100, carol: 500, mal: 99}[id]
}

var policy = Policy{MinAttestations: 2, MinAuditorTrust: 100}

// att builds a live attestation about subj; mods adjust it.
func att(id string, author peer.ID, verdict string, created int64, mods ...func(*Attestation)) Attestation {
	a := Attestation{ID: id, Author: author, Subject: subj, Verdict: verdict, Predicate: pred, Created: created}
	for _, m := range mods {
		m(&a)
	}
	return a
}

func revoked(a *Attestation)             { a.Revoked = true }
func about(s string) func(*Attestation)  { return func(a *Attestation) { a.Subject = s } }
func expires(t int64) func(*Attestation) { return func(a *Attestation) { a.Expires = t } }

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		pol       Policy
		atts      []Attestation
		certified bool
		passes    int
		reasons   []string
	}{
		{
			name: "no attestations",
			reasons: []string{
				"no attestations about the subject",
				"0 passing attestations from qualifying auditors (2 required): 2 more needed",
			},
		},
		{
			name:   "one pass below the minimum",
			atts:   []Attestation{att("a1", alice, "pass", 10)},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
			},
		},
		{
			name:      "enough passes",
			atts:      []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20)},
			certified: true,
			passes:    2,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
			},
		},
		{
			name:      "more passes than needed",
			atts:      []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20), att("c1", carol, "pass", 30)},
			certified: true,
			passes:    3,
			reasons: []string{
				"3 passing attestations from qualifying auditors (2 required)",
			},
		},
		{
			name:   "duplicate passes by one auditor count once",
			atts:   []Attestation{att("a1", alice, "pass", 10), att("a2", alice, "pass", 20), att("a2", alice, "pass", 20)},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
				"1 attestation superseded by a later one from the same auditor",
			},
		},
		{
			name:   "auditor below the trust floor ignored",
			atts:   []Attestation{att("a1", alice, "pass", 10), att("m1", mal, "pass", 20)},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
				"1 auditor below the trust floor 100 ignored",
			},
		},
		{
			name:   "qualifying fail blocks",
			atts:   []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20), att("c1", carol, "fail", 30)},
			passes: 2,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
				"fail by auditor " + carol.String() + " on " + pred + " blocks certification",
			},
		},
		{
			name:      "unqualified fail does not block",
			atts:      []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20), att("m1", mal, "fail", 30)},
			certified: true,
			passes:    2,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
				"1 auditor below the trust floor 100 ignored",
			},
		},
		{
			name: "later fail supersedes earlier pass",
			atts: []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20),
				att("a2", alice, "fail", 30, func(a *Attestation) { a.Predicate = "agora:audit/other/v1" })},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
				"fail by auditor " + alice.String() + " on agora:audit/other/v1 blocks certification",
				"1 attestation superseded by a later one from the same auditor",
			},
		},
		{
			name:      "revoking the later fail restores the earlier pass",
			atts:      []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20), att("a2", alice, "fail", 30, revoked)},
			certified: true,
			passes:    2,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
				"1 revoked attestation ignored",
			},
		},
		{
			name:   "same created time: the greater ID is later",
			atts:   []Attestation{att("a2", alice, "fail", 10), att("a1", alice, "pass", 10), att("b1", bob, "pass", 20)},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
				"fail by auditor " + alice.String() + " on " + pred + " blocks certification",
				"1 attestation superseded by a later one from the same auditor",
			},
		},
		{
			name: "expired ignored, expiring later counts",
			atts: []Attestation{att("a1", alice, "pass", 10, expires(now)), att("b1", bob, "pass", 20, expires(now+1)),
				att("c1", carol, "pass", 30)},
			passes: 2, certified: true,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
				"1 expired attestation ignored",
			},
		},
		{
			name: "expired later fail restores the earlier pass",
			atts: []Attestation{att("a1", alice, "pass", 10), att("a2", alice, "fail", 20, expires(now-1)),
				att("b1", bob, "pass", 20)},
			passes: 2, certified: true,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
				"1 expired attestation ignored",
			},
		},
		{
			name:   "warn neither passes nor blocks",
			atts:   []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "warn", 20)},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
				"warn by auditor " + bob.String() + " on " + pred + " does not count as a pass",
			},
		},
		{
			name:      "warn does not block",
			pol:       Policy{MinAttestations: 1, MinAuditorTrust: 100},
			atts:      []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "warn", 20)},
			certified: true,
			passes:    1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (1 required)",
				"warn by auditor " + bob.String() + " on " + pred + " does not count as a pass",
			},
		},
		{
			name: "attestations about other subjects ignored",
			atts: []Attestation{att("a1", alice, "pass", 10), att("b1", bob, "pass", 20, about(other)),
				att("c1", carol, "fail", 30, about(other))},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
			},
		},
		{
			name: "only other subjects",
			atts: []Attestation{att("b1", bob, "pass", 20, about(other))},
			reasons: []string{
				"no attestations about the subject",
				"0 passing attestations from qualifying auditors (2 required): 2 more needed",
			},
		},
		{
			name: "minimum below one is one",
			pol:  Policy{MinAttestations: 0, MinAuditorTrust: 100},
			atts: []Attestation{att("m1", mal, "pass", 10)},
			reasons: []string{
				"0 passing attestations from qualifying auditors (1 required): 1 more needed",
				"1 auditor below the trust floor 100 ignored",
			},
		},
		{
			name:      "minimum below one, one pass certifies",
			pol:       Policy{MinAttestations: -5, MinAuditorTrust: 0},
			atts:      []Attestation{att("m1", mal, "pass", 10)},
			certified: true,
			passes:    1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (1 required)",
			},
		},
		{
			name:   "unknown verdict supersedes and counts for nothing",
			atts:   []Attestation{att("a1", alice, "pass", 10), att("a2", alice, "maybe", 20), att("b1", bob, "pass", 20)},
			passes: 1,
			reasons: []string{
				"1 passing attestation from qualifying auditors (2 required): 1 more needed",
				`unknown verdict "maybe" by auditor ` + alice.String() + " on " + pred + " counts for nothing",
				"1 attestation superseded by a later one from the same auditor",
			},
		},
		{
			name: "everything at once",
			atts: []Attestation{
				att("a1", alice, "pass", 10), att("a2", alice, "pass", 20), att("a3", alice, "fail", 30, revoked),
				att("b1", bob, "pass", 10, expires(5)), att("b2", bob, "warn", 40, revoked, expires(5)),
				att("c1", carol, "fail", 10), att("c2", carol, "pass", 50),
				att("m1", mal, "fail", 10), att("m2", mal, "pass", 20),
				att("x1", carol, "fail", 60, about(other)),
			},
			certified: true,
			passes:    2,
			reasons: []string{
				"2 passing attestations from qualifying auditors (2 required)",
				"1 auditor below the trust floor 100 ignored",
				"3 attestations superseded by a later one from the same auditor",
				"2 revoked attestations ignored",
				"1 expired attestation ignored",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.pol
			if pol == (Policy{}) {
				pol = policy
			}
			in := slices.Clone(tt.atts)
			got := Decide(subj, tt.atts, level, pol, now)
			want := Decision{Subject: subj, Certified: tt.certified, Attestations: tt.passes, Reasons: tt.reasons}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decide:\n got %#v\nwant %#v", got, want)
			}
			if !slices.Equal(in, tt.atts) {
				t.Fatal("Decide modified its input")
			}
			// The order of the input must not matter.
			rng := rand.New(rand.NewPCG(1, uint64(len(tt.atts))))
			for range 20 {
				shuffled := slices.Clone(tt.atts)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if again := Decide(subj, shuffled, level, pol, now); !reflect.DeepEqual(again, got) {
					t.Fatalf("Decide depends on input order:\n got %#v\nwant %#v\ninput %v", again, got, shuffled)
				}
			}
		})
	}
}

func TestDecideNilLevel(t *testing.T) {
	atts := []Attestation{att("a1", alice, "pass", 10)}
	if d := Decide(subj, atts, nil, Policy{MinAttestations: 1, MinAuditorTrust: 1}, now); d.Certified {
		t.Fatalf("with no trust levels an auditor must not qualify above 0: %+v", d)
	}
	if d := Decide(subj, atts, nil, Policy{MinAttestations: 1}, now); !d.Certified {
		t.Fatalf("with a trust floor of 0 every auditor qualifies: %+v", d)
	}
}

func TestAll(t *testing.T) {
	atts := []Attestation{
		att("z1", alice, "pass", 10, about("skill:z")),
		att("a1", alice, "pass", 10, about("agent:a")),
		att("a2", bob, "pass", 10, about("agent:a")),
		att("m1", carol, "fail", 10, about("code:m")),
		att("z2", bob, "pass", 20, about("skill:z")),
		att("z3", carol, "fail", 30, about("skill:z")),
	}
	got := All(atts, level, policy, now)
	var subjects []string
	for _, d := range got {
		subjects = append(subjects, d.Subject)
		if want := Decide(d.Subject, atts, level, policy, now); !reflect.DeepEqual(d, want) {
			t.Errorf("All and Decide disagree on %s:\n got %#v\nwant %#v", d.Subject, d, want)
		}
	}
	if want := []string{"agent:a", "code:m", "skill:z"}; !slices.Equal(subjects, want) {
		t.Fatalf("All subjects = %q, want %q", subjects, want)
	}
	if !got[0].Certified || got[1].Certified || got[2].Certified {
		t.Fatalf("All certified the wrong subjects: %+v", got)
	}
	slices.Reverse(atts)
	if again := All(atts, level, policy, now); !reflect.DeepEqual(again, got) {
		t.Fatalf("All depends on input order:\n got %#v\nwant %#v", again, got)
	}
	if d := All(nil, level, policy, now); d == nil || len(d) != 0 {
		t.Fatalf("All(nil) = %#v, want an empty slice", d)
	}
}

// FuzzDecide builds attestations from 6-byte groups: author, subject,
// verdict, created, expiry and revoked, with small ranges so that authors,
// subjects and times collide.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{}, int64(2), int64(100), int64(50))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 1, 0, 0, 2, 0, 0, 2, 0, 1, 3, 0, 0}, int64(2), int64(100), int64(50))
	f.Add([]byte{0, 0, 0, 5, 9, 0, 0, 0, 1, 6, 0, 1, 3, 1, 2, 7, 0, 0}, int64(0), int64(0), int64(5))
	f.Fuzz(func(t *testing.T, data []byte, minAtts, minTrust, now int64) {
		verdicts := []string{"pass", "fail", "warn", "", "maybe"}
		var atts []Attestation
		for i := 0; i+6 <= len(data); i += 6 {
			b := data[i : i+6]
			atts = append(atts, Attestation{
				ID:        fmt.Sprintf("r%d", i/6%5),
				Author:    peer.ID([]byte{'p', b[0] % 6}),
				Subject:   fmt.Sprintf("s:%d", b[1]%3),
				Verdict:   verdicts[int(b[2])%len(verdicts)],
				Predicate: fmt.Sprintf("agora:p%d", b[2]/16%2),
				Created:   int64(b[3] % 8),
				Expires:   int64(b[4] % 12),
				Revoked:   b[5]%4 == 0,
			})
		}
		level := func(id peer.ID) int64 { return int64(id[1]) * 60 }
		pol := Policy{MinAttestations: minAtts, MinAuditorTrust: minTrust}
		all := All(atts, level, pol, now)
		reversed := slices.Clone(atts)
		slices.Reverse(reversed)
		for _, s := range []string{"s:0", "s:1", "s:2"} {
			d := Decide(s, atts, level, pol, now)
			if d.Reasons == nil || len(d.Reasons) == 0 {
				t.Fatalf("%s: no reasons: %#v", s, d)
			}
			authors := map[peer.ID]bool{}
			for _, a := range atts {
				if a.Subject == s {
					authors[a.Author] = true
				}
			}
			if d.Attestations < 0 || d.Attestations > len(authors) {
				t.Fatalf("%s: %d counting attestations from %d authors", s, d.Attestations, len(authors))
			}
			if d.Certified && int64(d.Attestations) < max(minAtts, 1) {
				t.Fatalf("%s: certified with %d attestations, %d required", s, d.Attestations, minAtts)
			}
			if again := Decide(s, reversed, level, pol, now); !reflect.DeepEqual(again, d) {
				t.Fatalf("%s: input order matters:\n got %#v\nwant %#v", s, again, d)
			}
			if i := slices.IndexFunc(all, func(x Decision) bool { return x.Subject == s }); i >= 0 {
				if !reflect.DeepEqual(all[i], d) {
					t.Fatalf("%s: All and Decide disagree:\n got %#v\nwant %#v", s, all[i], d)
				}
			} else if len(authors) != 0 {
				t.Fatalf("%s: All left out a subject with attestations", s)
			}
		}
		if !slices.IsSortedFunc(all, func(a, b Decision) int { return strings.Compare(a.Subject, b.Subject) }) {
			t.Fatalf("All is not sorted by subject")
		}
	})
}
