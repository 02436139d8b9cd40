package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/agora-p2p/agora/node/api"
)

// Propose is POST /api/v1/proposals.
func (c *Client) Propose(ctx context.Context, req api.ProposeRequest) (api.Proposed, error) {
	var v api.Proposed
	return v, c.Do(ctx, http.MethodPost, "/api/v1/proposals", req, &v)
}

// Proposals is GET /api/v1/proposals; status keeps only proposals in that
// status (all when empty).
func (c *Client) Proposals(ctx context.Context, community, status string) ([]api.ProposalView, error) {
	var out []api.ProposalView
	path := withQuery("/api/v1/proposals", "community", community, "status", status)
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Vote is POST /api/v1/proposals/{id}/votes.
func (c *Client) Vote(ctx context.Context, proposal string, req api.VoteRequest) (api.Voted, error) {
	var v api.Voted
	if err := need("proposal ID", proposal); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodPost, "/api/v1/proposals/"+url.PathEscape(proposal)+"/votes", req, &v)
}

// Tally is GET /api/v1/proposals/{id}/tally.
func (c *Client) Tally(ctx context.Context, community, proposal string) (api.TallyView, error) {
	var v api.TallyView
	if err := need("proposal ID", proposal); err != nil {
		return v, err
	}
	path := withQuery("/api/v1/proposals/"+url.PathEscape(proposal)+"/tally", "community", community)
	return v, c.Do(ctx, http.MethodGet, path, nil, &v)
}

// Policy is GET /api/v1/policy: the community policy as governance derived
// it.
func (c *Client) Policy(ctx context.Context, community string) (api.PolicyView, error) {
	var v api.PolicyView
	return v, c.Do(ctx, http.MethodGet, withQuery("/api/v1/policy", "community", community), nil, &v)
}
