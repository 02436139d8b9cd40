package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/trust"
)

// failingAgent offers text.stats and always fails it, after accepting.
func failingAgent(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broken.toml")
	toml := `name = "broken"
description = "Claims text.stats, always fails"
version = "1"
backend = "exec"

[exec]
command = ["/bin/sh", "-c", "cat >/dev/null; echo nonsense; exit 3"]

[[skills]]
id = "text.stats"
description = "Counts words (badly)"
input_schema = '{"type":"object"}'
output_schema = '{"type":"object"}'
`
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrustAcrossProcesses: A delegates to a good provider B and a bad one
// C; the automatic feedback reaches every node, and every node's community
// trust ranks B above C. Then two qualified auditors certify B's agent on
// every node, and one revocation takes the certification away everywhere.
func TestTrustAcrossProcesses(t *testing.T) {
	t.Parallel()
	ds, _ := community(t, "a", "b", "c")
	a, b, c := ds["a"], ds["b"], ds["c"]
	all := []*daemon{a, b, c}
	idA, idB, idC := peerID(t, a), peerID(t, b), peerID(t, c)
	run(t, "agents", "disable", "builtin", "--repo", c.dir)
	runJSON(t, &api.Agent{}, "agents", "add", failingAgent(t), "--repo", c.dir)
	waitSkill(t, a, "text.stats", idB, idC)

	var failed []string
	for i := range 3 {
		var got api.Task
		runJSON(t, &got, "ask", "text.stats", "--input", fmt.Sprintf(`{"text":"good %d"}`, i), "--peer", idB, "--repo", a.dir)
		if got.Status != "completed" {
			t.Fatalf("B: %+v", got)
		}
		_, _, _ = run(t, "ask", "text.stats", "--input", fmt.Sprintf(`{"text":"bad %d"}`, i), "--peer", idC, "--json", "--repo", a.dir)
	}
	var tasks []api.Task
	runJSON(t, &tasks, "tasks", "--repo", a.dir)
	for _, tk := range tasks {
		if tk.Executor == idC && tk.Status == "failed" {
			failed = append(failed, tk.ID)
		}
	}
	if len(failed) != 3 {
		t.Fatalf("C failed %d tasks, want 3: %+v", len(failed), tasks)
	}
	// A rates one of C's tasks by hand: it supersedes the automatic one.
	var rated api.Rated
	runJSON(t, &rated, "rate", failed[0], "0", "--comment", "answered nonsense", "--repo", a.dir)
	if rated.Executor != idC || rated.CID == "" {
		t.Fatalf("rate: %+v", rated)
	}
	// Nobody else may rate it, and a bad score changes nothing.
	if _, stderr, code := run(t, "rate", failed[0], "1001", "--repo", a.dir); code == 0 {
		t.Fatalf("score 1001 accepted: %s", stderr)
	}

	// Every node gets the 7 feedback records (6 automatic, 1 by hand).
	for _, d := range all {
		d.waitFor(t, "7 feedback records", func() bool {
			rs, err := d.client.Records(context.Background(), api.RecordQuery{Kind: "feedback"})
			return err == nil && len(rs) == 7
		})
	}
	// A's personal trust ranks B first and distrusts C at once.
	a.waitFor(t, "personal trust", func() bool {
		rep, err := a.client.Reputation(context.Background(), "", "personal", "")
		return err == nil && before(rep, idB, idC) && distrusted(rep, idC)
	})
	// Every node computes the same community trust once the epoch that
	// holds the feedback has closed (at most a minute). The feedback may
	// straddle an epoch boundary, so B can rank above C while one of C's
	// ratings still waits for the next cut: wait for all three, and fail
	// at once if C's hand-rated task ever counts twice.
	for _, d := range all {
		var rep []api.RepEntry
		d.waitWithin(t, 2*trust.CommunityEpoch+30*time.Second, "community trust", func() bool {
			var err error
			rep, err = d.client.Reputation(context.Background(), "", "community", "")
			if err != nil {
				return false
			}
			n := feedbackOf(rep, idC)
			if n > 3 {
				t.Fatalf("%s: C's feedback counted %d times, want 3 (one per receipt)", d.dir, n)
			}
			return n == 3 && before(rep, idB, idC)
		})
		var fromCLI []api.RepEntry
		runJSON(t, &fromCLI, "rep", "--kind", "community", "--repo", d.dir)
		if len(fromCLI) == 0 || fromCLI[0].PeerID != idA {
			t.Fatalf("%s: the founder is not first: %+v", d.dir, fromCLI)
		}
		for _, e := range fromCLI {
			if e.PeerID == idC && e.Feedback != 3 {
				t.Fatalf("C's feedback counted %d times, want 3 (one per receipt)", e.Feedback)
			}
		}
	}
	// ... and the same vector: read every node until one epoch answers
	// for all (an epoch may close between two reads).
	a.waitWithin(t, trust.CommunityEpoch+30*time.Second, "the same community trust on every node", func() bool {
		var first []api.RepEntry
		for i, d := range all {
			rep, err := d.client.Reputation(context.Background(), "", "community", "")
			if err != nil || len(rep) == 0 {
				return false
			}
			if i == 0 {
				first = rep
				continue
			}
			if !slices.EqualFunc(rep, first, func(x, y api.RepEntry) bool {
				return x.PeerID == y.PeerID && x.Rank == y.Rank && x.Feedback == y.Feedback && math.Abs(x.Trust-y.Trust) < 1e-9
			}) {
				return false
			}
		}
		return true
	})

	// Two auditors with community trust (A the founder, B rated well)
	// certify B's builtin agent; every node agrees.
	subject := "agent:" + idB + "/builtin"
	var pass [2]api.Published
	for i, d := range []*daemon{a, b} {
		runJSON(t, &pass[i], "attest", idB+"/builtin", "--subject-type", "agent", "--predicate", "agora:audit/manual/v1",
			"--verdict", "pass", "--repo", d.dir)
	}
	for _, d := range all {
		d.waitFor(t, "certification", func() bool {
			cs, err := d.client.Certifications(context.Background(), "", subject)
			return err == nil && len(cs) == 1 && cs[0].Certified && cs[0].Attestations == 2
		})
	}
	// The requester sees B's skill as certified and can insist on it.
	a.waitFor(t, "certified provider", func() bool {
		offers, err := a.client.Skills(context.Background(), "", "text.stats")
		if err != nil || len(offers) != 1 {
			return false
		}
		for _, p := range offers[0].Providers {
			if p.PeerID == idB && p.Certified {
				return true
			}
		}
		return false
	})
	var got api.Task
	runJSON(t, &got, "ask", "text.stats", "--input", `{"text":"certified only"}`, "--remote", "--certified", "--repo", a.dir)
	if got.Status != "completed" || got.Executor != idB {
		t.Fatalf("certified-only task: %+v", got)
	}

	// A revokes its attestation: the certification is gone everywhere.
	var rev api.Published
	runJSON(t, &rev, "revoke", pass[0].CID, "--repo", a.dir)
	for _, d := range all {
		d.waitFor(t, "decertification", func() bool {
			cs, err := d.client.Certifications(context.Background(), "", subject)
			return err == nil && len(cs) == 1 && !cs[0].Certified && cs[0].Attestations == 1
		})
	}
}

func before(rep []api.RepEntry, first, second string) bool {
	i, j := -1, -1
	for k, e := range rep {
		switch e.PeerID {
		case first:
			i = k
		case second:
			j = k
		}
	}
	if i < 0 {
		return false
	}
	return j < 0 || i < j && rep[i].Trust > rep[j].Trust
}

func feedbackOf(rep []api.RepEntry, who string) int {
	for _, e := range rep {
		if e.PeerID == who {
			return e.Feedback
		}
	}
	return 0
}

func distrusted(rep []api.RepEntry, who string) bool {
	for _, e := range rep {
		if e.PeerID == who {
			return e.Distrusted
		}
	}
	return false
}

// lyingAgent claims the builtin text.stats, deterministic, and answers
// wrong.
func lyingAgent(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "liar.toml")
	toml := `name = "liar"
description = "Claims text.stats, answers zero"
version = "1"
backend = "exec"

[exec]
command = ["/bin/sh", "-c", "cat >/dev/null; echo '{\"words\":0,\"lines\":0,\"chars\":0}'"]

[[skills]]
id = "text.stats"
description = "Counts words (wrongly)"
tags = ["deterministic"]
input_schema = '{"type":"object"}'
output_schema = '{"type":"object"}'
`
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSampledAudit: an auditor re-runs every deterministic task on another
// provider and attests about the receipt: fail when the outputs differ,
// with both hashes as evidence, pass when they match.
func TestSampledAudit(t *testing.T) {
	t.Parallel()
	ds, _ := communityWith(t, func(name, dir string) {
		if name == "a" {
			run(t, "config", "set", "trust.auditor", "true", "--repo", dir)
			run(t, "config", "set", "trust.audit_sample", "1000", "--repo", dir)
		}
	}, nil, "a", "b", "c")
	a, b, c := ds["a"], ds["b"], ds["c"]
	idB, idC := peerID(t, b), peerID(t, c)
	run(t, "agents", "disable", "builtin", "--repo", c.dir)
	runJSON(t, &api.Agent{}, "agents", "add", lyingAgent(t), "--repo", c.dir)
	waitSkill(t, a, "text.stats", idB, idC)

	audit := func(peer, text string) api.RecordView {
		t.Helper()
		var got api.Task
		runJSON(t, &got, "ask", "text.stats", "--input", fmt.Sprintf(`{"text":%q}`, text), "--peer", peer, "--repo", a.dir)
		if got.Status != "completed" || got.Receipt == nil {
			t.Fatalf("task on %s: %+v", peer, got)
		}
		var att api.RecordView
		a.waitFor(t, "the audit of "+got.ID, func() bool {
			rs, err := a.client.Records(context.Background(), api.RecordQuery{Kind: "attestation", Subject: "receipt:" + got.Receipt.CID})
			if err != nil || len(rs) != 1 {
				return false
			}
			att = rs[0]
			return true
		})
		if att.Body["predicate"] != "agora:audit/rerun/v1" {
			t.Fatalf("attestation %+v", att.Body)
		}
		claims, _ := att.Body["claims"].(map[string]any)
		if claims["executor"] != peer {
			t.Fatalf("claims %+v", claims)
		}
		return att
	}
	// B answers right, the re-run on C (the only other provider) lies.
	att := audit(idB, "one two three")
	if att.Body["verdict"] != "fail" || !strings.Contains(att.Body["evidence"].(string), idC) {
		t.Fatalf("mismatch: %+v", att.Body)
	}
	// C mends its ways: the next audit passes.
	run(t, "agents", "remove", "liar", "--repo", c.dir)
	run(t, "agents", "enable", "builtin", "--repo", c.dir)
	a.waitFor(t, "C's builtin agent", func() bool {
		offers, err := a.client.Skills(context.Background(), "", "text.stats")
		if err != nil || len(offers) != 1 {
			return false
		}
		for _, p := range offers[0].Providers {
			if p.PeerID == idC && p.Agent == "builtin" {
				return true
			}
		}
		return false
	})
	if att := audit(idB, "four five"); att.Body["verdict"] != "pass" {
		t.Fatalf("match: %+v", att.Body)
	}
}
