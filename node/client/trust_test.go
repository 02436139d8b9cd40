package client_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/api/apitest"
	"github.com/agora-p2p/agora/node/client"
)

// fakeTrust is an api.Trust that records the arguments it was called with,
// so tests see exactly what reached the server's backend.
type fakeTrust struct {
	mu      sync.Mutex
	calls   [][]string
	trusted []api.TrustedPeer
	err     error
}

var _ api.Trust = (*fakeTrust)(nil)

func (f *fakeTrust) called(args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, args)
	return f.err
}

func (f *fakeTrust) last(t *testing.T) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the backend was not called")
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeTrust) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeTrust) Reputation(ctx context.Context, community, kind, peer string) ([]api.RepEntry, error) {
	if err := f.called("Reputation", community, kind, peer); err != nil {
		return nil, err
	}
	return []api.RepEntry{
		{PeerID: "12D3KooWA", Trust: 0.75, Level: 1000, Rank: 1, Feedback: 3, Seed: true},
		{PeerID: "12D3KooWB", Trust: 0.25, Level: 333, Rank: 2, Feedback: 1, Blame: 0.5, Distrusted: true},
	}, nil
}

func (f *fakeTrust) Certifications(ctx context.Context, community, subject string) ([]api.Certification, error) {
	if err := f.called("Certifications", community, subject); err != nil {
		return nil, err
	}
	// Reasons nil: the server must still send [].
	return []api.Certification{{Subject: "agent:x", Certified: true, Attestations: 2}}, nil
}

func (f *fakeTrust) TrustedPeers(ctx context.Context) ([]api.TrustedPeer, error) {
	if err := f.called("TrustedPeers"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.trusted), nil
}

func (f *fakeTrust) AddTrustedPeer(ctx context.Context, peer string) (api.TrustedPeer, error) {
	if err := f.called("AddTrustedPeer", peer); err != nil {
		return api.TrustedPeer{}, err
	}
	p := api.TrustedPeer{PeerID: peer, Added: 42}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trusted = append(f.trusted, p)
	return p, nil
}

func (f *fakeTrust) RemoveTrustedPeer(ctx context.Context, peer string) error {
	return f.called("RemoveTrustedPeer", peer)
}

func (f *fakeTrust) Rate(ctx context.Context, task string, req api.RateRequest) (api.Rated, error) {
	if err := f.called("Rate", task, req.Comment); err != nil {
		return api.Rated{}, err
	}
	return api.Rated{CID: "bafyrating", Task: task, Executor: "12D3KooWE", Score: req.Score}, nil
}

func startTrust(t *testing.T) (*client.Client, *fakeTrust) {
	t.Helper()
	f := &fakeTrust{}
	s := apitest.Start(t, func(cfg *api.ServerConfig) { cfg.Trust = f })
	return s.Client(), f
}

func TestReputation(t *testing.T) {
	c, f := startTrust(t)
	out, err := c.Reputation(t.Context(), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Level != 1000 || !out[0].Seed || !out[1].Distrusted || out[1].Blame != 0.5 {
		t.Fatalf("reputation %+v", out)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Reputation", "", "", ""}) {
		t.Fatalf("backend got %q", got)
	}
	// Values with characters that mean something in a query arrive intact.
	if _, err := c.Reputation(t.Context(), "a b&kind=x", "community", "12D3+KooW=?#"); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Reputation", "a b&kind=x", "community", "12D3+KooW=?#"}) {
		t.Fatalf("backend got %q", got)
	}
}

func TestCertifications(t *testing.T) {
	c, f := startTrust(t)
	out, err := c.Certifications(t.Context(), "bafyc", "agent:x/y?z=1&w")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !out[0].Certified || out[0].Attestations != 2 || out[0].Reasons == nil {
		t.Fatalf("certifications %+v", out)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Certifications", "bafyc", "agent:x/y?z=1&w"}) {
		t.Fatalf("backend got %q", got)
	}
}

func TestTrustedPeers(t *testing.T) {
	c, f := startTrust(t)
	ctx := t.Context()
	if ps, err := c.TrustedPeers(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("%v %v", ps, err)
	}
	p, err := c.AddTrustedPeer(ctx, "12D3KooWA")
	if err != nil || p != (api.TrustedPeer{PeerID: "12D3KooWA", Added: 42}) {
		t.Fatalf("%+v %v", p, err)
	}
	if ps, err := c.TrustedPeers(ctx); err != nil || len(ps) != 1 || ps[0].PeerID != "12D3KooWA" {
		t.Fatalf("%v %v", ps, err)
	}
	// The peer is one path segment, whatever it holds.
	for _, peer := range []string{"12D3KooWA", "a/b c?d"} {
		if err := c.RemoveTrustedPeer(ctx, peer); err != nil {
			t.Fatal(err)
		}
		if got := f.last(t); !slices.Equal(got, []string{"RemoveTrustedPeer", peer}) {
			t.Fatalf("backend got %q", got)
		}
	}
}

func TestRate(t *testing.T) {
	c, f := startTrust(t)
	r, err := c.Rate(t.Context(), "task/1 ?", api.RateRequest{Score: 900, Comment: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	if r != (api.Rated{CID: "bafyrating", Task: "task/1 ?", Executor: "12D3KooWE", Score: 900}) {
		t.Fatalf("rated %+v", r)
	}
	if got := f.last(t); !slices.Equal(got, []string{"Rate", "task/1 ?", "fast"}) {
		t.Fatalf("backend got %q", got)
	}
}

// A request the server rejects comes back as an *APIError carrying its
// sentence, and never reaches the backend.
func TestTrustBadRequest(t *testing.T) {
	c, f := startTrust(t)
	ctx := t.Context()
	_, err := c.Rate(ctx, "t1", api.RateRequest{Score: 1001})
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok || ae.Status != http.StatusBadRequest || ae.Message != "score must be between 0 and 1000 (thousandths)." {
		t.Fatalf("%#v", err)
	}
	_, err = c.Reputation(ctx, "", "global", "")
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusBadRequest || ae.Error() != "kind must be personal or community." {
		t.Fatalf("%#v", err)
	}
	if n := f.count(); n != 0 {
		t.Fatalf("the backend was called %d times", n)
	}
	// The backend's own errors keep their status and sentence.
	f.mu.Lock()
	f.err = &api.Error{Code: http.StatusBadRequest, Message: "\"x\" is not a peer ID."}
	f.mu.Unlock()
	_, err = c.AddTrustedPeer(ctx, "x")
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusBadRequest || ae.Error() != "\"x\" is not a peer ID." {
		t.Fatalf("%#v", err)
	}
}

// Missing arguments are refused before any request.
func TestTrustNeedsArguments(t *testing.T) {
	c, f := startTrust(t)
	ctx := t.Context()
	for name, err := range map[string]error{
		"add":    func() error { _, err := c.AddTrustedPeer(ctx, " "); return err }(),
		"remove": c.RemoveTrustedPeer(ctx, ""),
		"rate":   func() error { _, err := c.Rate(ctx, "", api.RateRequest{Score: 1}); return err }(),
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

func TestTrustUnavailable(t *testing.T) {
	c := apitest.Start(t).Client()
	_, err := c.Reputation(t.Context(), "", "", "")
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("%#v", err)
	}
}
