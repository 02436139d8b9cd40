package certify

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Verdicts, as body.Verdict spells them.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
	VerdictWarn = "warn"
)

// Attestation is one verified attestation record, as the registry holds it.
type Attestation struct {
	ID        string  // record CID (text), the tie-break between equal Created
	Author    peer.ID // the auditor
	Subject   string  // "type:id", as body.Subject.String() prints it
	Verdict   string  // "pass", "fail" or "warn"
	Predicate string
	Created   int64 // unix ms
	Expires   int64 // unix ms, 0 = never
	Revoked   bool  // its author revoked it
}

// Policy is the part of the community policy that certification uses.
type Policy struct {
	// MinAttestations is how many distinct qualifying auditors must pass
	// the subject (certify_min_attestations). Below 1 it is taken as 1.
	MinAttestations int64
	// MinAuditorTrust is the community trust level, in thousandths, an
	// auditor needs to count (certify_min_auditor_trust).
	MinAuditorTrust int64
}

// Decision is the certification of one subject and why.
type Decision struct {
	Subject   string `json:"subject"`
	Certified bool   `json:"certified"`
	// Attestations counts the distinct qualifying auditors whose latest
	// live attestation on the subject passes.
	Attestations int `json:"attestations"`
	// Reasons explain the decision in a fixed order; never nil.
	Reasons []string `json:"reasons"`
}

// Decide certifies one subject from the attestations about it; attestations
// about other subjects are ignored. level gives an auditor's community trust
// level in thousandths (nil gives every auditor 0); now is unix ms. atts is
// not modified.
func Decide(subject string, atts []Attestation, level func(peer.ID) int64, pol Policy, now int64) Decision {
	var about []Attestation
	for _, a := range atts {
		if a.Subject == subject {
			about = append(about, a)
		}
	}
	return decide(subject, about, level, pol, now)
}

// All decides every subject named in atts, sorted by subject.
func All(atts []Attestation, level func(peer.ID) int64, pol Policy, now int64) []Decision {
	bySubject := make(map[string][]Attestation)
	for _, a := range atts {
		bySubject[a.Subject] = append(bySubject[a.Subject], a)
	}
	out := make([]Decision, 0, len(bySubject))
	for _, s := range sortedKeys(bySubject) {
		out = append(out, decide(s, bySubject[s], level, pol, now))
	}
	return out
}

func sortedKeys(m map[string][]Attestation) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// compare orders attestations by author, then oldest first. Fields past ID
// only matter for inconsistent input (one ID, two contents); they keep the
// decision independent of input order even then.
func compare(a, b Attestation) int {
	return cmp.Or(
		cmp.Compare(a.Author, b.Author),
		cmp.Compare(a.Created, b.Created),
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.Verdict, b.Verdict),
		cmp.Compare(a.Predicate, b.Predicate),
		cmp.Compare(a.Expires, b.Expires),
		boolCompare(a.Revoked, b.Revoked),
	)
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// decide certifies subject from about, which holds only attestations about
// it.
func decide(subject string, about []Attestation, level func(peer.ID) int64, pol Policy, now int64) Decision {
	d := Decision{Subject: subject, Reasons: []string{}}
	need := max(pol.MinAttestations, 1)

	sorted := slices.Clone(about)
	slices.SortFunc(sorted, compare)
	sorted = slices.Compact(sorted) // the same record twice is one record

	var (
		passes, unqualified          int64
		revoked, expired, superseded int
		fails, warns, unknown        []Attestation
	)
	for run := range authorRuns(sorted) {
		var latest *Attestation
		live := 0
		for i := range run {
			switch a := &run[i]; {
			case a.Revoked:
				revoked++
			case a.Expires != 0 && a.Expires <= now:
				expired++
			default:
				live++
				latest = a // runs are oldest first
			}
		}
		if latest == nil {
			continue
		}
		superseded += live - 1
		if trust(level, latest.Author) < pol.MinAuditorTrust {
			unqualified++
			continue
		}
		switch latest.Verdict {
		case VerdictPass:
			passes++
		case VerdictFail:
			fails = append(fails, *latest)
		case VerdictWarn:
			warns = append(warns, *latest)
		default:
			unknown = append(unknown, *latest)
		}
	}

	d.Attestations = int(passes)
	d.Certified = len(fails) == 0 && passes >= need

	r := &d.Reasons
	if len(about) == 0 {
		add(r, "no attestations about the subject")
	}
	if passes >= need {
		add(r, "%d passing %s from qualifying auditors (%d required)", passes, plural(passes, "attestation"), need)
	} else {
		add(r, "%d passing %s from qualifying auditors (%d required): %d more needed", passes, plural(passes, "attestation"), need, need-passes)
	}
	for _, a := range fails {
		add(r, "fail by auditor %s on %s blocks certification", a.Author, a.Predicate)
	}
	for _, a := range warns {
		add(r, "warn by auditor %s on %s does not count as a pass", a.Author, a.Predicate)
	}
	for _, a := range unknown {
		add(r, "unknown verdict %q by auditor %s on %s counts for nothing", a.Verdict, a.Author, a.Predicate)
	}
	if unqualified > 0 {
		add(r, "%d %s below the trust floor %d ignored", unqualified, plural(unqualified, "auditor"), pol.MinAuditorTrust)
	}
	if superseded > 0 {
		add(r, "%d %s superseded by a later one from the same auditor", superseded, plural(int64(superseded), "attestation"))
	}
	if revoked > 0 {
		add(r, "%d revoked %s ignored", revoked, plural(int64(revoked), "attestation"))
	}
	if expired > 0 {
		add(r, "%d expired %s ignored", expired, plural(int64(expired), "attestation"))
	}
	return d
}

// authorRuns yields the runs of attestations by the same author in sorted.
func authorRuns(sorted []Attestation) func(yield func([]Attestation) bool) {
	return func(yield func([]Attestation) bool) {
		for i := 0; i < len(sorted); {
			j := i + 1
			for j < len(sorted) && sorted[j].Author == sorted[i].Author {
				j++
			}
			if !yield(sorted[i:j]) {
				return
			}
			i = j
		}
	}
}

func trust(level func(peer.ID) int64, id peer.ID) int64 {
	if level == nil {
		return 0
	}
	return level(id)
}

func add(r *[]string, format string, args ...any) {
	*r = append(*r, fmt.Sprintf(format, args...))
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
