package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/api/apitest"
	"github.com/agora-p2p/agora/node/client"
)

// fakeGov is an api.Governance that records the arguments it was called
// with, so tests see exactly what reached the server's backend.
type fakeGov struct {
	mu    sync.Mutex
	calls [][]string
	err   error
}

var _ api.Governance = (*fakeGov)(nil)

func (f *fakeGov) called(args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, args)
	return f.err
}

func (f *fakeGov) last(t *testing.T) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the backend was not called")
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeGov) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeGov) Propose(ctx context.Context, req api.ProposeRequest) (api.Proposed, error) {
	q, th := "nil", "nil"
	if req.Quorum != nil {
		q = strconv.FormatInt(*req.Quorum, 10)
	}
	if req.Threshold != nil {
		th = strconv.FormatInt(*req.Threshold, 10)
	}
	if err := f.called("Propose", req.Community, req.Title, req.Body, strings.Join(req.Choices, "|"), req.Method, req.Weighting,
		q, th, strconv.FormatInt(req.DurationS, 10), strconv.FormatInt(req.StartMS, 10), req.Action); err != nil {
		return api.Proposed{}, err
	}
	return api.Proposed{ID: "bafyproposal"}, nil
}

func (f *fakeGov) Proposals(ctx context.Context, community, status string) ([]api.ProposalView, error) {
	if err := f.called("Proposals", community, status); err != nil {
		return nil, err
	}
	// Choices nil: the server must still send [].
	return []api.ProposalView{{ID: "bafyp", Title: "Raise the quorum", Status: "open", Ends: 42, Votes: 3, Quorum: 500}}, nil
}

func (f *fakeGov) Vote(ctx context.Context, proposal string, req api.VoteRequest) (api.Voted, error) {
	credits := make([]string, len(req.Credits))
	for i, c := range req.Credits {
		credits[i] = strconv.FormatInt(c, 10)
	}
	if err := f.called("Vote", proposal, req.Community, strings.Join(req.Choices, "|"), strings.Join(credits, "|"), req.Reason); err != nil {
		return api.Voted{}, err
	}
	return api.Voted{CID: "bafyvote"}, nil
}

func (f *fakeGov) Tally(ctx context.Context, community, proposal string) (api.TallyView, error) {
	if err := f.called("Tally", community, proposal); err != nil {
		return api.TallyView{}, err
	}
	// Counts and Disagreements nil: the server must still send {} and [].
	return api.TallyView{ID: proposal, Status: "passed", Winner: "yes", Voters: 3, Weight: 3000, Eligible: 4000, Final: true}, nil
}

func (f *fakeGov) Policy(ctx context.Context, community string) (api.PolicyView, error) {
	if err := f.called("Policy", community); err != nil {
		return api.PolicyView{}, err
	}
	// Only Keys set: the server must send [] for the other lists.
	return api.PolicyView{Community: community, Keys: []api.PolicyKeyValue{{Key: "vote.quorum", Value: 300, SetBy: "bafyp"}}}, nil
}

func startGov(t *testing.T) (*client.Client, *fakeGov) {
	t.Helper()
	f := &fakeGov{}
	s := apitest.Start(t, func(cfg *api.ServerConfig) { cfg.Governance = f })
	return s.Client(), f
}

func TestPropose(t *testing.T) {
	c, f := startGov(t)
	q, th := int64(0), int64(667)
	out, err := c.Propose(t.Context(), api.ProposeRequest{
		Community: "bafyc", Title: "Ban a spammer", Body: "It spams.", Choices: []string{"yes", "no"},
		Method: "ranked", Weighting: "trust", Quorum: &q, Threshold: &th, DurationS: 90, StartMS: 1700000000000,
		Action: "ban 12D3KooWA",
	})
	if err != nil || out.ID != "bafyproposal" {
		t.Fatalf("%+v %v", out, err)
	}
	// A quorum of 0 is sent, not taken for the policy's.
	want := []string{"Propose", "bafyc", "Ban a spammer", "It spams.", "yes|no", "ranked", "trust", "0", "667", "90", "1700000000000", "ban 12D3KooWA"}
	if got := f.last(t); !slices.Equal(got, want) {
		t.Fatalf("backend got %q", got)
	}
	if _, err := c.Propose(t.Context(), api.ProposeRequest{Title: "t", Choices: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t); got[7] != "nil" || got[8] != "nil" {
		t.Fatalf("unset quorum and threshold arrived as %q, %q", got[7], got[8])
	}
}

func TestProposals(t *testing.T) {
	c, f := startGov(t)
	out, err := c.Proposals(t.Context(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].ID != "bafyp" || out[0].Votes != 3 || out[0].Ends != 42 || out[0].Choices == nil {
		t.Fatalf("proposals %+v", out)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Proposals", "", ""}) {
		t.Fatalf("backend got %q", got)
	}
	if _, err := c.Proposals(t.Context(), "a b&status=x", "no-quorum"); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Proposals", "a b&status=x", "no-quorum"}) {
		t.Fatalf("backend got %q", got)
	}
}

func TestVote(t *testing.T) {
	c, f := startGov(t)
	// The proposal is one path segment, whatever it holds; the choices
	// keep their order (a ranked ballot).
	for _, id := range []string{"bafyp", "a/b c?d"} {
		v, err := c.Vote(t.Context(), id, api.VoteRequest{Community: "bafyc", Choices: []string{"no", "0", "maybe"}, Credits: []int64{100, 0, 900}, Reason: "why not"})
		if err != nil || v.CID != "bafyvote" {
			t.Fatalf("%+v %v", v, err)
		}
		if got := f.last(t); !slices.Equal(got, []string{"Vote", id, "bafyc", "no|0|maybe", "100|0|900", "why not"}) {
			t.Fatalf("backend got %q", got)
		}
	}
}

func TestTally(t *testing.T) {
	c, f := startGov(t)
	out, err := c.Tally(t.Context(), "bafyc", "bafy/p?x")
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "bafy/p?x" || out.Winner != "yes" || !out.Final || out.Eligible != 4000 || out.Counts == nil || out.Disagreements == nil {
		t.Fatalf("tally %+v", out)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Tally", "bafyc", "bafy/p?x"}) {
		t.Fatalf("backend got %q", got)
	}
}

func TestPolicy(t *testing.T) {
	c, f := startGov(t)
	out, err := c.Policy(t.Context(), "bafy c&x")
	if err != nil {
		t.Fatal(err)
	}
	if out.Community != "bafy c&x" || len(out.Keys) != 1 || out.Keys[0].Value != 300 ||
		out.Founders == nil || out.Banned == nil || out.Certified == nil || out.Charter != nil {
		t.Fatalf("policy %+v", out)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Policy", "bafy c&x"}) {
		t.Fatalf("backend got %q", got)
	}
}

// A request the server rejects comes back as an *APIError carrying its
// sentence, and never reaches the backend.
func TestGovernanceBadRequest(t *testing.T) {
	c, f := startGov(t)
	ctx := t.Context()
	_, err := c.Propose(ctx, api.ProposeRequest{Title: "one choice", Choices: []string{"yes"}})
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "at least two") {
		t.Fatalf("%#v", err)
	}
	_, err = c.Propose(ctx, api.ProposeRequest{Title: "t", Choices: []string{"a", "b"}, DurationS: -1})
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusBadRequest {
		t.Fatalf("%#v", err)
	}
	_, err = c.Vote(ctx, "bafyp", api.VoteRequest{})
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusBadRequest {
		t.Fatalf("%#v", err)
	}
	if n := f.count(); n != 0 {
		t.Fatalf("the backend was called %d times", n)
	}
	// The backend's own errors keep their status and sentence.
	f.mu.Lock()
	f.err = &api.Error{Code: http.StatusNotFound, Message: "no proposal bafyx in this community."}
	f.mu.Unlock()
	_, err = c.Tally(ctx, "", "bafyx")
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusNotFound || ae.Error() != "no proposal bafyx in this community." {
		t.Fatalf("%#v", err)
	}
}

// Missing proposal IDs are refused before any request.
func TestGovernanceNeedsArguments(t *testing.T) {
	c, f := startGov(t)
	ctx := t.Context()
	for name, err := range map[string]error{
		"vote":  func() error { _, err := c.Vote(ctx, " ", api.VoteRequest{Choices: []string{"yes"}}); return err }(),
		"tally": func() error { _, err := c.Tally(ctx, "bafyc", ""); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: empty argument accepted", name)
		} else if _, ok := errors.AsType[*client.APIError](err); ok {
			t.Errorf("%s: reached the server: %v", name, err)
		}
	}
	if n := f.count(); n != 0 {
		t.Fatalf("the backend was called %d times", n)
	}
}

func TestGovernanceUnavailable(t *testing.T) {
	c := apitest.Start(t).Client()
	_, err := c.Policy(t.Context(), "")
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("%#v", err)
	}
}
