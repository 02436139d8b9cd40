package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/config"
	"github.com/agora-p2p/agora/node/repo"
	"github.com/agora-p2p/agora/node/trust"
)

func newDemoCmd(g *globals) *cobra.Command {
	var keep bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a small local community of three nodes and walk through what Agora does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return runDemo(ctx, cmd.OutOrStdout(), keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary repos instead of deleting them")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	return cmd
}

// demoNode is one in-process node of the demo, reached through its real API.
type demoNode struct {
	name string
	n    *node.Node
	c    *client.Client
}

// demoConfig is a node that lives on loopback only, with free ports.
func demoConfig() config.Config {
	c := config.Default()
	c.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	c.P2P.MDNS = false
	c.P2P.NATPortMap = false
	c.P2P.DHT = "server"
	c.API.Listen = "127.0.0.1:0"
	c.Log.Level = "warn"
	return c
}

func runDemo(ctx context.Context, w io.Writer, keep bool) (err error) {
	say := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	base, err := os.MkdirTemp("", "agora-demo-")
	if err != nil {
		return err
	}
	var nodes []*demoNode
	defer func() {
		for _, d := range nodes {
			if d.n != nil {
				d.n.Close()
				d.n.Repo.Close()
			}
		}
		if keep {
			say("\nThe repos are kept in %s.", base)
		} else {
			os.RemoveAll(base)
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	say("Agora demo: three people (alice, bob and carol) each run a node on this machine.")
	say("\n1. Starting three nodes, each with its own repo, identity and local API on loopback.")
	for _, name := range []string{"alice", "bob", "carol"} {
		dir := filepath.Join(base, name)
		if _, err := repo.Init(dir, demoConfig()); err != nil {
			return err
		}
		r, err := repo.Open(dir)
		if err != nil {
			return err
		}
		n, err := node.Start(ctx, r, log)
		if err != nil {
			r.Close()
			return err
		}
		d := &demoNode{name: name, n: n, c: client.New("http://"+n.APIAddr.String(), r.Token)}
		nodes = append(nodes, d)
		say("   %-5s  peer %s  API http://%s", name, shortID(n.Host.ID().String()), n.APIAddr)
	}
	alice, bob, carol := nodes[0], nodes[1], nodes[2]

	say("\n2. alice creates the community \"garden-club\"; she is its founder, and its genesis record is signed by her key.")
	// Votes of a few seconds and a two-second grace keep the demo short; a
	// real community keeps the defaults (a week, two minutes).
	created, err := alice.c.CreateCommunity(ctx, api.CreateCommunityRequest{Name: "garden-club", Description: "Agents that help with the allotment",
		Policy: map[string]int64{"vote.grace_s": 2, "vote.duration_s": 5}})
	if err != nil {
		return fmt.Errorf("alice cannot create the community: %w", err)
	}
	say("   community ID (the CID of the genesis record): %s", created.ID)
	say("\n3. alice shares one invite string; it carries the signed genesis and her addresses:")
	inv := created.Invite
	if len(inv) > 72 {
		inv = inv[:72] + "…"
	}
	say("   %s (%d characters)", inv, len(created.Invite))

	say("\n4. bob and carol join with the invite; each node checks the genesis signature and CID first.")
	for _, d := range []*demoNode{bob, carol} {
		j, err := d.c.JoinCommunity(ctx, created.Invite)
		if err != nil {
			return fmt.Errorf("%s cannot join: %w", d.name, err)
		}
		say("   %-5s joined %q", d.name, j.Name)
	}

	say("\n5. Waiting until every node sees the other two as peers and as members of the community...")
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		st, err := d.c.Status(ctx)
		if err != nil {
			return false, err
		}
		return st.Peers >= 2 && len(st.Communities) == 1 && st.Communities[0].Members == 3, nil
	}); err != nil {
		return fmt.Errorf("the nodes did not find each other: %w", err)
	}
	for _, d := range nodes {
		st, _ := d.c.Status(ctx)
		ps, _ := d.c.Peers(ctx)
		names := []string{}
		for _, p := range ps {
			for _, o := range nodes {
				if o.n.Host.ID().String() == p.PeerID {
					names = append(names, fmt.Sprintf("%s (%s, %.1f ms)", o.name, p.Path, p.LatencyMS))
				}
			}
		}
		say("   %-5s sees %d peers: %v; %q has %d members", d.name, st.Peers, names, st.Communities[0].Name, st.Communities[0].Members)
	}

	say("\n6. Every node advertises the skills of its agents (a fresh node has three built-in ones) on the community's adverts topic.")
	bobID := bob.n.Host.ID().String()
	if err := waitDemo(ctx, []*demoNode{alice}, func(d *demoNode) (bool, error) {
		offers, err := d.c.Skills(ctx, "", "text.stats")
		return err == nil && len(offers) == 1 && len(offers[0].Providers) == 3, nil
	}); err != nil {
		return fmt.Errorf("the adverts did not reach alice: %w", err)
	}
	offers, err := alice.c.Skills(ctx, "", "")
	if err != nil {
		return err
	}
	for _, o := range offers {
		say("   alice sees %-10s offered by %d members: %s", o.Skill, len(o.Providers), clipText(o.Description, 60))
	}

	say("\n7. alice delegates text.stats to bob's node over /agora/task/1.0.0; bob's agent runs it and signs a receipt.")
	t, err := alice.c.SubmitTask(ctx, api.TaskRequest{Skill: "text.stats", Peer: bobID, Wait: true, TimeoutMS: 30000,
		Input: json.RawMessage(`{"text":"Sow the beans in April.\nWater them weekly."}`)})
	if err != nil {
		return fmt.Errorf("alice cannot delegate: %w", err)
	}
	if t.Status != "completed" || t.Receipt == nil {
		return fmt.Errorf("the delegated task ended %s: %s", t.Status, t.Error)
	}
	say("   task %s %s on %s (agent %s) in %d ms: %s", t.ID, t.Status, shortID(t.Executor), t.Agent, t.DurationMS, t.Output)
	say("   receipt %s: signed by the executor, verified by alice (input and output hashes match)", t.Receipt.CID)

	say("\n8. alice runs a workflow: two branches run in parallel on bob's and carol's nodes, and a last step combines them.")
	carolPeer := carol.n.Host.ID().String()
	flow := fmt.Sprintf(`name: garden.plan
steps:
  - id: words
    skill: text.stats
    peer: %s
    input: '{text: $input.note}'
  - id: area
    skill: math.eval
    peer: %s
    input: '{expr: "\($input.beds) * 3.5"}'
  - id: plan
    skill: json.query
    input: '{data: {words: $steps.words.words, area: $steps.area.value}, query: "{bed_area_m2: .area, note_words: .words}"}'
output: '$steps.plan.result'
`, bobID, carolPeer)
	wf, err := alice.c.RunWorkflow(ctx, api.WorkflowRun{Name: "garden-plan.yaml", Flow: flow, Input: json.RawMessage(`{"note":"Beans by the fence, leeks in bed two","beds":4}`)})
	if err != nil {
		return fmt.Errorf("alice cannot run the workflow: %w", err)
	}
	if wf.Status != "completed" {
		return fmt.Errorf("the workflow ended %s: %s", wf.Status, wf.Error)
	}
	names := map[string]string{}
	for _, d := range nodes {
		names[d.n.Host.ID().String()] = d.name
	}
	for _, st := range wf.Steps {
		say("   step %-5s %-10s %s on %s's node in %d ms", st.ID, st.Skill, st.Status, names[st.Executor], st.DurationMS)
	}
	say("   output: %s", wf.Output)

	carolID := carol.n.Host.ID().String()
	say("\n9. Feedback: after each task bob's and carol's nodes ran for her, alice's node filed a signed feedback record")
	say("   holding the executor's receipt (completed: 900 of 1000). alice also rates carol's step by hand.")
	var carolTask string
	for _, st := range wf.Steps {
		if st.Executor == carolID {
			carolTask = st.TaskID
		}
	}
	if err := waitDemo(ctx, []*demoNode{alice}, func(d *demoNode) (bool, error) {
		rs, err := d.c.Records(ctx, api.RecordQuery{Kind: "feedback"})
		return err == nil && len(rs) == 3, nil
	}); err != nil {
		return fmt.Errorf("alice's node filed no feedback: %w", err)
	}
	rated, err := alice.c.Rate(ctx, carolTask, api.RateRequest{Score: 700, Comment: "right answer, but slow"})
	if err != nil {
		return fmt.Errorf("alice cannot rate carol's task: %w", err)
	}
	say("   alice rates task %s 700: feedback %s (it supersedes the automatic 900)", carolTask, shortID(rated.CID))
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		rs, err := d.c.Records(ctx, api.RecordQuery{Kind: "feedback"})
		return err == nil && len(rs) == 4, nil
	}); err != nil {
		return fmt.Errorf("the feedback did not reach everyone: %w", err)
	}
	say("   every node holds the 4 feedback records; EigenTrust counts one per receipt, the latest.")

	say("\n10. Reputation: every node computes the community's trust vector, seeded by the founder (alice), over the")
	say("    feedback of closed %s epochs, so all of them get the same numbers.", trust.CommunityEpoch)
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		rep, err := d.c.Reputation(ctx, "", "community", bobID)
		return err == nil && len(rep) == 1 && rep[0].Level >= 100, nil
	}); err != nil {
		return fmt.Errorf("the community trust did not settle: %w", err)
	}
	// The nodes agree within an epoch; read them until one epoch answers
	// for all (an epoch may close between two reads).
	lines := make([]string, len(nodes))
	if err := waitDemo(ctx, nodes[:1], func(*demoNode) (bool, error) {
		for i, d := range nodes {
			rep, err := d.c.Reputation(ctx, "", "community", "")
			if err != nil {
				return false, err
			}
			var line []string
			for _, e := range rep {
				line = append(line, fmt.Sprintf("%d. %s %.3f", e.Rank, names[e.PeerID], e.Trust))
			}
			lines[i] = strings.Join(line, ", ")
		}
		return !slices.ContainsFunc(lines, func(l string) bool { return l != lines[0] }), nil
	}); err != nil {
		return fmt.Errorf("the nodes do not agree on the community trust: %w", err)
	}
	for i, d := range nodes {
		say("    %-5s ranks: %s", d.name, lines[i])
	}

	say("\n11. Certification: alice and bob, both with community trust, audit carol's node and publish attestations;")
	say("    the policy certifies with 2 passing attestations from auditors whose trust level is ≥ 100 (a tenth of the top member's).")
	for _, d := range []*demoNode{alice, bob} {
		pub, err := d.c.Publish(ctx, api.PublishRequest{Kind: "attestation", Body: map[string]any{
			"subject":   map[string]any{"type": "peer", "id": carolID},
			"predicate": "agora:audit/deterministic/v1",
			"verdict":   "pass",
			"claims":    map[string]any{"samples": "20", "matched": "20"},
			"evidence":  "20 sampled text.stats tasks re-run on another provider; all outputs matched",
		}})
		if err != nil {
			return fmt.Errorf("%s cannot publish the attestation: %w", d.name, err)
		}
		say("    %-5s attests: %s", d.name, shortID(pub.CID))
	}
	subject := "peer:" + carolID
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		cs, err := d.c.Certifications(ctx, "", subject)
		return err == nil && len(cs) == 1 && cs[0].Certified, nil
	}); err != nil {
		return fmt.Errorf("the certification did not reach everyone: %w", err)
	}
	cs, _ := alice.c.Certifications(ctx, "", subject)
	say("    every node now certifies carol's node: %s", strings.Join(cs[0].Reasons, "; "))
	offers, _ = alice.c.Skills(ctx, "", "math.eval")
	for _, o := range offers {
		for _, p := range o.Providers {
			if p.PeerID == carolID {
				say("    alice's skill list marks carol's math.eval certified=%v (a requester may insist: agora ask --certified)", p.Certified)
			}
		}
	}

	say("\n12. alice publishes 20 more attestations while carol is offline; when carol comes back she catches up by sync.")
	carolRepo := carol.n.Repo.Dir
	carol.n.Close()
	carol.n.Repo.Close()
	carol.n = nil
	for i := 0; i < 20; i++ {
		if _, err := alice.c.Publish(ctx, api.PublishRequest{Kind: "attestation", Body: map[string]any{
			"subject": map[string]any{"type": "skill", "id": fmt.Sprintf("garden.plan-%d", i)}, "predicate": "agora:audit/review/v1", "verdict": "pass"}}); err != nil {
			return err
		}
	}
	r, err := repo.Open(carolRepo)
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, r, log)
	if err != nil {
		r.Close()
		return err
	}
	carol.n, carol.c = n, client.New("http://"+n.APIAddr.String(), r.Token)
	held, err := alice.c.Records(ctx, api.RecordQuery{Limit: 1000})
	if err != nil {
		return err
	}
	if err := waitDemo(ctx, []*demoNode{carol}, func(d *demoNode) (bool, error) {
		recs, err := d.c.Records(ctx, api.RecordQuery{Limit: 1000})
		return err == nil && len(recs) == len(held), nil
	}); err != nil {
		return fmt.Errorf("carol did not catch up: %w", err)
	}
	say("   carol restarted with no invite, reconnected to the peers she remembered, and now holds all %d records.", len(held))

	say("\n13. bob revokes his attestation: one pass is left, and every node withdraws carol's certification.")
	bobAtts, err := bob.c.Records(ctx, api.RecordQuery{Kind: "attestation", Author: bobID})
	if err != nil || len(bobAtts) == 0 {
		return fmt.Errorf("bob's attestation is missing: %v", err)
	}
	if _, err := bob.c.Publish(ctx, api.PublishRequest{Kind: "revocation", Body: map[string]any{"target": bobAtts[0].CID}}); err != nil {
		return fmt.Errorf("bob cannot revoke: %w", err)
	}
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		cs, err := d.c.Certifications(ctx, "", subject)
		return err == nil && len(cs) == 1 && !cs[0].Certified, nil
	}); err != nil {
		return fmt.Errorf("the revocation did not reach everyone: %w", err)
	}
	cs, _ = carol.c.Certifications(ctx, "", subject)
	say("    carol's own node agrees: certified=%v (%s)", cs[0].Certified, strings.Join(cs[0].Reasons, "; "))

	say("\n14. Governance: alice proposes that one passing attestation should be enough to certify; alice, bob and carol")
	say("    vote. The vote lasts 6 s, then a 2 s grace for late gossip; every node tallies it and applies the result.")
	prop, err := alice.c.Propose(ctx, api.ProposeRequest{Title: "One audit is enough", Choices: []string{"yes", "no"},
		Body: "Our allotment is small; one trusted auditor should do.", DurationS: 6, Action: "set-policy certify.min_attestations=1"})
	if err != nil {
		return fmt.Errorf("alice cannot propose: %w", err)
	}
	say("    proposal %s: set-policy certify.min_attestations=1 when \"yes\" wins", shortID(prop.ID))
	ballots := map[string]string{"alice": "yes", "bob": "yes", "carol": "no"}
	for _, d := range nodes {
		if err := waitDemo(ctx, []*demoNode{d}, func(d *demoNode) (bool, error) {
			ps, err := d.c.Proposals(ctx, "", "open")
			return err == nil && len(ps) == 1, nil
		}); err != nil {
			return fmt.Errorf("%s never saw the proposal: %w", d.name, err)
		}
		v, err := d.c.Vote(ctx, prop.ID, api.VoteRequest{Choices: []string{ballots[d.name]}})
		if err != nil {
			return fmt.Errorf("%s cannot vote: %w", d.name, err)
		}
		say("    %-5s votes %-3s (vote %s)", d.name, ballots[d.name], shortID(v.CID))
	}
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		p, err := d.c.Policy(ctx, "")
		if err != nil {
			return false, err
		}
		for _, k := range p.Keys {
			if k.Key == "certify.min_attestations" {
				return k.Value == 1, nil
			}
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("the policy change did not reach everyone: %w", err)
	}
	for _, d := range nodes {
		tv, err := d.c.Tally(ctx, "", prop.ID)
		if err != nil {
			return err
		}
		say("    %-5s tally: %s, yes %d no %d (1000 per member), fingerprint %s…", d.name, tv.Status, tv.Counts["yes"], tv.Counts["no"], tv.Fingerprint[:12])
	}
	if err := waitDemo(ctx, nodes, func(d *demoNode) (bool, error) {
		cs, err := d.c.Certifications(ctx, "", subject)
		return err == nil && len(cs) == 1 && cs[0].Certified, nil
	}); err != nil {
		return fmt.Errorf("the new policy did not certify carol: %w", err)
	}
	say("    every node applies certify.min_attestations=1 (set by %s): alice's one attestation certifies carol again.", shortID(prop.ID))

	say("\nThe community is up: it shares skills, delegates with signed receipts, rates and certifies its members,")
	say("and governs itself by vote.")
	return nil
}

// waitDemo polls until ok holds on every node; polling is fine for a demo
// that narrates to a person.
func waitDemo(ctx context.Context, nodes []*demoNode, ok func(*demoNode) (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		all := true
		for _, d := range nodes {
			good, err := ok(d)
			if err != nil {
				return err
			}
			all = all && good
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
