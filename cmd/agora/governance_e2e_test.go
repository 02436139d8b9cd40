package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agora-p2p/agora/node/api"
)

// TestGovernanceAcrossProcesses: five nodes. The members the founder has
// worked with vote to ban a fifth; within a sync interval every node
// refuses its tasks and adverts. A node that was offline during the vote
// catches up and computes the same tally and policy. Then a set-policy
// proposal changes certification everywhere.
func TestGovernanceAcrossProcesses(t *testing.T) {
	t.Parallel()
	// Votes as short as 5 s and a one-second grace, so they close quickly.
	ds, _ := communityWith(t, nil, []string{"--policy", "vote.grace_s=1", "--policy", "vote.duration_s=5"}, "a", "b", "c", "d", "e")
	a, b, c, d, e := ds["a"], ds["b"], ds["c"], ds["d"], ds["e"]
	all := []*daemon{a, b, c, d, e}
	ids := map[*daemon]string{}
	for _, x := range all {
		ids[x] = peerID(t, x)
	}
	// The founder delegates to b, c and d: its feedback gives them the
	// community trust that member weighting asks of voters.
	waitSkill(t, a, "text.stats", ids[b], ids[c], ids[d], ids[e])
	for _, x := range []*daemon{b, c, d} {
		var got api.Task
		runJSON(t, &got, "ask", "text.stats", "--input", `{"text":"hello"}`, "--peer", ids[x], "--repo", a.dir)
		if got.Status != "completed" {
			t.Fatalf("task on %s: %+v", x.dir, got)
		}
	}
	for _, x := range all {
		x.waitFor(t, "the founder's feedback", func() bool {
			rs, err := x.client.Records(context.Background(), api.RecordQuery{Kind: "feedback"})
			return err == nil && len(rs) == 3
		})
	}
	// d goes offline for the whole vote.
	d.stop(t)

	// A snap vote asking for less than the policy is refused outright.
	if _, stderr, code := run(t, "propose", "--title", "Ban e", "--choices", "yes,no", "--duration", "6s", "--quorum", "0",
		"--action", "ban "+ids[e], "--repo", a.dir); code == 0 {
		t.Fatalf("a proposal with quorum 0 was accepted: %s", stderr)
	}
	var prop api.Proposed
	runJSON(t, &prop, "propose", "--title", "Ban e", "--choices", "yes,no", "--duration", "6s",
		"--action", "ban "+ids[e], "--repo", a.dir)
	for _, x := range []*daemon{a, b, c} {
		x.waitFor(t, "the proposal", func() bool {
			ps, err := x.client.Proposals(context.Background(), "", "")
			return err == nil && len(ps) == 1
		})
		var v api.Voted
		runJSON(t, &v, "vote", prop.ID, "yes", "--reason", "spam", "--repo", x.dir)
	}
	// e votes no: it has no community trust, so its vote counts for nothing.
	e.waitFor(t, "the proposal", func() bool {
		ps, err := e.client.Proposals(context.Background(), "", "")
		return err == nil && len(ps) == 1
	})
	run(t, "vote", prop.ID, "no", "--repo", e.dir)

	online := []*daemon{a, b, c, e}
	var want api.TallyView
	for _, x := range online {
		var tv api.TallyView
		x.waitFor(t, "the final tally", func() bool {
			var err error
			tv, err = x.client.Tally(context.Background(), "", prop.ID)
			return err == nil && tv.Final && tv.Status == "passed"
		})
		if tv.Voters != 3 || tv.Counts["yes"] != 3000 {
			t.Fatalf("%s: tally %+v", x.dir, tv)
		}
		if want.Fingerprint == "" {
			want = tv
		} else if tv.Fingerprint != want.Fingerprint {
			t.Fatalf("%s: fingerprint %s, a's %s", x.dir, tv.Fingerprint, want.Fingerprint)
		}
	}
	// Every online node applies the ban: e's tasks are refused, its
	// skills are gone from the lists.
	for _, x := range []*daemon{a, b, c} {
		x.waitFor(t, "the ban", func() bool {
			p, err := x.client.Policy(context.Background(), "")
			return err == nil && len(p.Banned) == 1 && p.Banned[0].ID == ids[e] && p.Banned[0].SetBy == prop.ID
		})
		offers, err := x.client.Skills(context.Background(), "", "text.stats")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range offers {
			for _, p := range o.Providers {
				if p.PeerID == ids[e] {
					t.Fatalf("%s still lists the banned peer's skill", x.dir)
				}
			}
		}
		if got := refused(t, e, ids[x]); got.Status != "rejected" || got.Code != "banned" {
			t.Fatalf("the banned peer's task on %s: %+v", x.dir, got)
		}
	}

	// d comes back: it catches up and computes the same tally and policy.
	d2 := startDaemon(t, d.dir)
	d2.waitFor(t, "the tally after catching up", func() bool {
		tv, err := d2.client.Tally(context.Background(), "", prop.ID)
		return err == nil && tv.Final && tv.Fingerprint == want.Fingerprint && tv.Status == "passed" && len(tv.Disagreements) == 0
	})
	d2.waitFor(t, "the ban after catching up", func() bool {
		p, err := d2.client.Policy(context.Background(), "")
		return err == nil && len(p.Banned) == 1 && p.Banned[0].ID == ids[e]
	})
	if got := refused(t, e, ids[d]); got.Status != "rejected" || got.Code != "banned" {
		t.Fatalf("the banned peer's task on d: %+v", got)
	}

	// One attestation does not certify under the default policy (two)...
	var att api.Published
	runJSON(t, &att, "attest", ids[b], "--subject-type", "peer", "--predicate", "agora:audit/manual/v1", "--verdict", "pass", "--repo", a.dir)
	subject := "peer:" + ids[b]
	members := []*daemon{a, b, c, d2}
	for _, x := range members {
		x.waitFor(t, "the attestation", func() bool {
			cs, err := x.client.Certifications(context.Background(), "", subject)
			return err == nil && len(cs) == 1 && cs[0].Attestations == 1 && !cs[0].Certified
		})
	}
	// ...until the community lowers certify.min_attestations to 1.
	var prop2 api.Proposed
	runJSON(t, &prop2, "propose", "--title", "One audit is enough", "--choices", "yes,no", "--duration", "6s",
		"--action", "set-policy certify.min_attestations=1", "--repo", a.dir)
	for _, x := range []*daemon{a, b, c} {
		x.waitFor(t, "the second proposal", func() bool {
			ps, err := x.client.Proposals(context.Background(), "", "open")
			return err == nil && len(ps) == 1
		})
		run(t, "vote", prop2.ID, "yes", "--repo", x.dir)
	}
	for _, x := range members {
		x.waitFor(t, "certification by the new policy", func() bool {
			cs, err := x.client.Certifications(context.Background(), "", subject)
			return err == nil && len(cs) == 1 && cs[0].Certified
		})
		var pol api.PolicyView
		runJSON(t, &pol, "policy", "--repo", x.dir)
		for _, k := range pol.Keys {
			if k.Key == "certify.min_attestations" && (k.Value != 1 || k.SetBy != prop2.ID) {
				t.Fatalf("%s: %+v", x.dir, k)
			}
		}
	}
}

// refused asks provider to run a task for from, which must fail, and
// returns the task.
func refused(t *testing.T, from *daemon, provider string) api.Task {
	t.Helper()
	out, stderr, code := run(t, "ask", "text.stats", "--input", `{"text":"let me in"}`, "--peer", provider, "--json", "--repo", from.dir)
	var got api.Task
	if code == 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("ask from %s to %s: exit %d, %s %s", from.dir, provider, code, out, stderr)
	}
	return got
}
