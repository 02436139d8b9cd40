package client

import (
	"context"
	"net/http"

	"github.com/agora-p2p/agora/node/api"
)

// UILogin is POST /api/v1/ui/login: a one-time path that logs a browser
// into the dashboard.
func (c *Client) UILogin(ctx context.Context) (api.UILogin, error) {
	var out api.UILogin
	return out, c.Do(ctx, http.MethodPost, "/api/v1/ui/login", nil, &out)
}
