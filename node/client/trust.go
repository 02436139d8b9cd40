package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/agora-p2p/agora/node/api"
)

// withQuery appends the non-empty parameters of kv (name, value, ...) to
// path.
func withQuery(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// Reputation is GET /api/v1/reputation; kind is "personal" (the default
// when empty) or "community", and peer keeps only that peer.
func (c *Client) Reputation(ctx context.Context, community, kind, peer string) ([]api.RepEntry, error) {
	var out []api.RepEntry
	path := withQuery("/api/v1/reputation", "community", community, "kind", kind, "peer", peer)
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Certifications is GET /api/v1/certifications.
func (c *Client) Certifications(ctx context.Context, community, subject string) ([]api.Certification, error) {
	var out []api.Certification
	path := withQuery("/api/v1/certifications", "community", community, "subject", subject)
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// TrustedPeers is GET /api/v1/trust/peers.
func (c *Client) TrustedPeers(ctx context.Context) ([]api.TrustedPeer, error) {
	var out []api.TrustedPeer
	return out, c.Do(ctx, http.MethodGet, "/api/v1/trust/peers", nil, &out)
}

// AddTrustedPeer is POST /api/v1/trust/peers.
func (c *Client) AddTrustedPeer(ctx context.Context, peer string) (api.TrustedPeer, error) {
	var v api.TrustedPeer
	if err := need("peer ID", peer); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodPost, "/api/v1/trust/peers", api.TrustPeerRequest{PeerID: peer}, &v)
}

// RemoveTrustedPeer is DELETE /api/v1/trust/peers/{peer}.
func (c *Client) RemoveTrustedPeer(ctx context.Context, peer string) error {
	if err := need("peer ID", peer); err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, "/api/v1/trust/peers/"+url.PathEscape(peer), nil, nil)
}

// Rate is POST /api/v1/tasks/{id}/rate.
func (c *Client) Rate(ctx context.Context, task string, req api.RateRequest) (api.Rated, error) {
	var v api.Rated
	if err := need("task ID", task); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(task)+"/rate", req, &v)
}
