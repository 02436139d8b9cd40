package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/capindex"
	"github.com/agora-p2p/agora/node/tasks"
	"github.com/agora-p2p/agora/node/trust"
	"github.com/agora-p2p/agora/protocol/body"
	"github.com/agora-p2p/agora/protocol/community"
	"github.com/agora-p2p/agora/protocol/record"
	"github.com/agora-p2p/agora/protocol/task"
	"github.com/agora-p2p/agora/registry/certify"
)

// AuditPredicate is the predicate of the attestations a sampled audit
// publishes about a receipt.
const AuditPredicate = "agora:audit/rerun/v1"

// DeterministicTag marks a skill whose output depends only on its input,
// so auditors may re-run it elsewhere and compare.
const DeterministicTag = "deterministic"

// trustComms adapts the communities service for the trust service.
type trustComms struct{ n *Node }

func (t trustComms) Joined() []cid.Cid { return t.n.Comms.Joined() }

func (t trustComms) Genesis(c cid.Cid) (community.Genesis, bool) {
	cm, err := t.n.Comms.Get(c.String())
	if err != nil {
		return community.Genesis{}, false
	}
	return cm.Info, true
}

// startTrust brings up reputation and certification and hands the
// capability index its judge. Called by startWork before delegation.
func (n *Node) startTrust() error {
	ts, err := trust.New(trust.Config{
		Store: n.Store, DB: n.DB.DB, Key: n.Repo.Key, Communities: trustComms{n},
		Publish:    n.Comms.PublishRecord,
		Registerer: n.registry, Log: n.log.With("subsystem", "trust"),
		// Governance comes up after trust; until it does, the genesis rules.
		Policy: func(c cid.Cid) community.Policy {
			if g := n.gov.Load(); g != nil {
				return g.Policy(c).Policy
			}
			gen, _ := trustComms{n}.Genesis(c)
			return gen.Policy
		},
		Founders: func(c cid.Cid) []peer.ID {
			if g := n.gov.Load(); g != nil {
				return g.Founders(c)
			}
			gen, _ := trustComms{n}.Genesis(c)
			return gen.Founders
		},
		Banned: n.banned,
		Decided: func(c cid.Cid) (map[string]string, map[string]string) {
			if g := n.gov.Load(); g != nil {
				st := g.Policy(c).State
				return st.Certified, st.Decertified
			}
			return nil, nil
		},
		OnUpdate: func() { n.Hub.Publish("trust.updated", nil) },
	})
	if err != nil {
		return err
	}
	n.Trust = ts
	n.trust.Store(ts)
	n.Index.SetJudge(func(c cid.Cid, p peer.ID, agent string) capindex.Standing {
		j := ts.Judge(c, p, agent)
		return capindex.Standing{Trust: j.Level, Certified: j.Certified, Distrusted: j.Distrusted, Banned: j.Banned}
	})
	n.audits = rate.NewLimiter(rate.Limit(float64(n.Repo.Config.Trust.AuditBudget)/3600), max(n.Repo.Config.Trust.AuditBudget, 1))
	return nil
}

// appScore is gossipsub's application-specific score: the replication
// penalties plus what reputation says.
func (n *Node) appScore(p peer.ID) float64 {
	s := n.Repl.Penalties().Score(p)
	if ts := n.trust.Load(); ts != nil {
		s += ts.AppScore(p)
	}
	return s
}

// taskDone files the automatic feedback on a task another member ran and,
// on an auditor, may audit it.
func (n *Node) taskDone(d tasks.Done) {
	cfg := n.Repo.Config.Trust
	if cfg.Feedback && !d.Audit {
		score := int64(cfg.ScoreCompleted)
		switch {
		case d.Status != tasks.StatusCompleted && d.Code == "timeout":
			score = int64(cfg.ScoreTimeout)
		case d.Status != tasks.StatusCompleted:
			score = int64(cfg.ScoreFailed)
		}
		n.Trust.File(d.Receipt, score, "")
	}
	if cfg.Auditor && cfg.AuditBudget > 0 && !d.Audit && d.Status == tasks.StatusCompleted && slices.Contains(d.Tags, DeterministicTag) &&
		rand.IntN(1000) < cfg.AuditSample && n.audits.Allow() {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.audit(d) }()
	}
}

// audit re-runs a completed deterministic task on another provider and
// attests about its receipt whether the outputs match. A re-run that does
// not complete proves nothing and publishes nothing.
func (n *Node) audit(d tasks.Done) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := n.log.With("subsystem", "audit", "task", d.Task, "skill", d.Skill)
	t, err := n.Tasks.Submit(ctx, tasks.Request{Skill: d.Skill, Input: d.Input, Community: d.Community.String(),
		Remote: true, Exclude: []peer.ID{d.Receipt.Executor}, Audit: true, HopsLeft: -1})
	if err != nil {
		log.Info("cannot audit", "err", err)
		return
	}
	final, err := n.Tasks.Wait(ctx, t.ID)
	if err != nil || final.Status != tasks.StatusCompleted || final.Receipt == nil {
		log.Info("audit re-run did not complete; nothing attested", "status", final.Status, "err", err)
		return
	}
	a, b := canonicalHash(d.Output), canonicalHash(final.Output)
	verdict := body.VerdictPass
	if a != b {
		verdict = body.VerdictFail
	}
	att := body.Attestation{
		Subject: body.Subject{Type: body.SubjectReceipt, ID: d.Receipt.CID().String()}, Predicate: AuditPredicate, Verdict: verdict,
		Claims: map[string]string{"executor": d.Receipt.Executor.String(), "agent": d.Receipt.Agent, "skill": d.Skill,
			"rerun_executor": final.Executor, "rerun_task": final.ID},
		Evidence: fmt.Sprintf("output sha2-256 (canonical JSON) from %s: %s\nre-run on %s: %s", d.Receipt.Executor, a, final.Executor, b),
	}
	rec, err := n.Repl.Publish(ctx, n.Repo.Key, d.Community, record.KindAttestation, att)
	if err != nil {
		log.Warn("cannot publish the audit", "err", err)
		return
	}
	log.Info("audited", "verdict", verdict, "attestation", rec.CID())
	n.Hub.Publish("audit.done", map[string]string{"task_id": d.Task, "verdict": string(verdict), "cid": rec.CID().String()})
}

// canonicalHash hashes JSON with its object keys sorted and no spaces, so
// two honest providers' answers compare equal however they format them.
func canonicalHash(raw json.RawMessage) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers compare as written: 1 and 1.0 differ, big integers keep every digit
	if err := dec.Decode(&v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			raw = b
		}
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// trustAPI serves reputation, certification and feedback.
type trustAPI struct{ n *Node }

var _ api.Trust = trustAPI{}

func (t trustAPI) Reputation(_ context.Context, community, kind, who string) ([]api.RepEntry, error) {
	c, err := t.n.communityFor(community)
	if err != nil {
		return nil, err
	}
	var only peer.ID
	if who != "" {
		if only, err = peer.Decode(strings.TrimSpace(who)); err != nil {
			return nil, badRequest("%q is not a peer ID: %v.", who, err)
		}
	}
	res, seeds, ok := t.n.Trust.Reputation(c, kind)
	if !ok {
		return nil, &api.Error{Code: http.StatusServiceUnavailable, Message: "the reputation of this community is not computed yet; try again in a moment."}
	}
	out := []api.RepEntry{}
	for _, e := range res.Entries {
		if only != "" && e.Peer != only {
			continue
		}
		out = append(out, api.RepEntry{PeerID: e.Peer.String(), Trust: e.Trust, Level: res.Level(e.Peer), Rank: e.Rank,
			Feedback: e.Feedback, Blame: e.Blame, Distrusted: trust.Distrusted(e), Seed: seeds[e.Peer]})
	}
	if only != "" && len(out) == 0 {
		out = append(out, api.RepEntry{PeerID: only.String()}) // a newcomer: zero trust, no rank
	}
	return out, nil
}

func (t trustAPI) Certifications(_ context.Context, community, subject string) ([]api.Certification, error) {
	c, err := t.n.communityFor(community)
	if err != nil {
		return nil, err
	}
	var ds []certify.Decision
	if subject = strings.TrimSpace(subject); subject != "" {
		if !strings.Contains(subject, ":") {
			return nil, badRequest("name the subject as type:id, for example peer:12D3Koo... or agent:12D3Koo.../builtin.")
		}
		d, ok := t.n.Trust.Decide(c, subject)
		if !ok {
			return nil, &api.Error{Code: http.StatusServiceUnavailable, Message: "the certifications of this community are not computed yet; try again in a moment."}
		}
		ds = []certify.Decision{d}
	} else {
		ds = t.n.Trust.Certifications(c)
	}
	out := make([]api.Certification, 0, len(ds))
	for _, d := range ds {
		out = append(out, api.Certification{Subject: d.Subject, Certified: d.Certified, Attestations: d.Attestations, Reasons: d.Reasons})
	}
	return out, nil
}

func (t trustAPI) TrustedPeers(context.Context) ([]api.TrustedPeer, error) {
	out := []api.TrustedPeer{}
	for _, p := range t.n.Trust.Trusted() {
		out = append(out, api.TrustedPeer{PeerID: p.Peer.String(), Added: p.Added})
	}
	return out, nil
}

func (t trustAPI) AddTrustedPeer(_ context.Context, who string) (api.TrustedPeer, error) {
	p, err := peer.Decode(strings.TrimSpace(who))
	if err != nil {
		return api.TrustedPeer{}, badRequest("%q is not a peer ID: %v.", who, err)
	}
	tp, err := t.n.Trust.Trust(p)
	if err == trust.ErrSelf {
		return api.TrustedPeer{}, badRequest("%v.", err)
	}
	if err != nil {
		return api.TrustedPeer{}, err
	}
	return api.TrustedPeer{PeerID: tp.Peer.String(), Added: tp.Added}, nil
}

func (t trustAPI) RemoveTrustedPeer(_ context.Context, who string) error {
	p, err := peer.Decode(strings.TrimSpace(who))
	if err != nil {
		return badRequest("%q is not a peer ID: %v.", who, err)
	}
	ok, err := t.n.Trust.Untrust(p)
	if err != nil {
		return err
	}
	if !ok {
		return &api.Error{Code: http.StatusNotFound, Message: fmt.Sprintf("%s is not among the peers this node trusts.", p)}
	}
	return nil
}

func (t trustAPI) Rate(ctx context.Context, id string, req api.RateRequest) (api.Rated, error) {
	tk, err := t.n.Tasks.Get(strings.TrimSpace(id))
	if err != nil {
		return api.Rated{}, err
	}
	switch {
	case tk.Role != "requester":
		return api.Rated{}, badRequest("task %s ran on this node for %s; only its requester can rate it.", tk.ID, tk.Requester)
	case tk.Receipt == nil:
		return api.Rated{}, &api.Error{Code: http.StatusConflict, Message: fmt.Sprintf("task %s has no receipt (status %s): only a task another member ran and signed for can be rated.", tk.ID, tk.Status)}
	}
	raw, err := base64.StdEncoding.DecodeString(tk.Receipt.Raw)
	if err != nil {
		return api.Rated{}, fmt.Errorf("the journal's receipt of task %s is damaged: %w", tk.ID, err)
	}
	rc, err := task.DecodeReceipt(raw)
	if err != nil {
		return api.Rated{}, fmt.Errorf("the journal's receipt of task %s no longer verifies: %w", tk.ID, err)
	}
	if rc.Executor == t.n.Host.ID() {
		return api.Rated{}, badRequest("task %s ran on this node; only tasks another member ran can be rated.", tk.ID)
	}
	rec, err := t.n.Trust.Rate(ctx, rc, req.Score, req.Comment)
	if err != nil {
		return api.Rated{}, registryError(err)
	}
	return api.Rated{CID: rec.CID().String(), Task: tk.ID, Executor: rc.Executor.String(), Score: req.Score}, nil
}
