package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

const (
	// DefaultTimeout bounds one request (not the event stream). Joining a
	// community may dial bootstrap peers, hence more than a few seconds.
	DefaultTimeout = 60 * time.Second
	dialTimeout    = 5 * time.Second
	// maxReplyBytes bounds what a reply may make the client hold.
	maxReplyBytes = 32 << 20
)

// Client talks to one node's local API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	baseErr error
	token   string
	repo    string

	http       *http.Client // requests, with a timeout
	stream     *http.Client // the event stream, bounded by ctx only
	eventsIdle time.Duration
	retryMin   time.Duration
	retryMax   time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout sets the per-request timeout (DefaultTimeout); it does not
// apply to Events.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.http.Timeout = d
		}
	}
}

// WithEventsIdle sets how long Events waits without a byte, heartbeats
// included, before it takes the connection for dead and reconnects
// (default 4 heartbeats, 60 s).
func WithEventsIdle(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.eventsIdle = d
		}
	}
}

// WithReconnectDelay sets the first and the largest wait between Events
// reconnection attempts (default 250 ms doubling up to 5 s).
func WithReconnectDelay(min, max time.Duration) Option {
	return func(c *Client) {
		if min > 0 && max >= min {
			c.retryMin, c.retryMax = min, max
		}
	}
}

// New returns a client for the API at baseURL, which may be a URL
// ("http://127.0.0.1:4243") or a bare address ("127.0.0.1:4243"). A bad
// address is reported by the first request.
func New(baseURL, token string, opts ...Option) *Client {
	transport := &http.Transport{
		Proxy:                 nil, // the API is local; never send the token to a proxy
		DialContext:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c := &Client{
		token:      strings.TrimSpace(token),
		http:       &http.Client{Transport: transport, Timeout: DefaultTimeout},
		stream:     &http.Client{Transport: transport},
		eventsIdle: 4 * api.DefaultHeartbeat,
		retryMin:   250 * time.Millisecond,
		retryMax:   5 * time.Second,
	}
	c.base, c.baseErr = parseBase(baseURL)
	for _, o := range opts {
		o(c)
	}
	return c
}

func parseBase(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("the API address is empty; it looks like 127.0.0.1:4243")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the API address %q is not valid; it looks like 127.0.0.1:4243 or http://127.0.0.1:4243", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// FromRepo finds the running daemon of a repo: the address in <repo>/api
// (written by the daemon while it runs) and the token in <repo>/api.token.
// Without an api file it returns an error for which IsNotRunning is true.
func FromRepo(repoDir string, opts ...Option) (*Client, error) {
	addr, err := os.ReadFile(filepath.Join(repoDir, "api"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &NotRunningError{Repo: repoDir, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the API address of repo %s: %w", repoDir, err)
	}
	token, err := os.ReadFile(filepath.Join(repoDir, "api.token"))
	if err != nil {
		return nil, fmt.Errorf("cannot read the API token of repo %s (%w); it is created by `agora init`", repoDir, err)
	}
	if len(bytes.TrimSpace(token)) == 0 {
		return nil, fmt.Errorf("the API token file %s is empty; restore it or run `agora init` again", filepath.Join(repoDir, "api.token"))
	}
	c := New(string(addr), string(token), opts...)
	if c.baseErr != nil {
		return nil, fmt.Errorf("%w (in %s)", c.baseErr, filepath.Join(repoDir, "api"))
	}
	c.repo = repoDir
	return c, nil
}

// BaseURL is the API's base URL, e.g. "http://127.0.0.1:4243".
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// newRequest builds a request for path (which starts with "/").
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, fmt.Errorf("cannot build the request %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// transportError words a failure to get any reply.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if refused(err) {
		return &NotRunningError{Repo: c.repo, Addr: c.base.Host, Err: err}
	}
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Timeout() {
		return fmt.Errorf("the Agora daemon at %s did not answer in time; it may be busy or stuck, see its log: %w", c.base.Host, err)
	}
	return fmt.Errorf("cannot reach the Agora daemon at %s: %w", c.base.Host, err)
}

// Do sends in (if not nil) as JSON to method path and decodes a successful
// reply into out (if not nil). A reply with an error status comes back as an
// *APIError; no reply at all because nothing listens as a NotRunningError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("cannot encode the request to %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return replyError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplyBytes)).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("the reply of %s %s is not what this client expects (%v); are the CLI and the daemon the same version?", method, path, err)
	}
	return nil
}

// replyError reads an error reply; a body that is not the API's ErrorBody
// means something else answers on the API's address.
func replyError(resp *http.Response) error {
	var eb api.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return &APIError{Status: resp.StatusCode, Message: eb.Error}
	}
	return &APIError{
		Status:  resp.StatusCode,
		Message: fmt.Sprintf("the API answered %s without an explanation; check that the address in the repo's api file belongs to an Agora daemon", resp.Status),
	}
}

// Healthz checks that the daemon answers; it needs no token.
func (c *Client) Healthz(ctx context.Context) error {
	var h struct {
		Status string `json:"status"`
	}
	if err := c.Do(ctx, http.MethodGet, "/healthz", nil, &h); err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("the daemon at %s reports status %q", c.base.Host, h.Status)
	}
	return nil
}

// Identity is GET /api/v1/id.
func (c *Client) Identity(ctx context.Context) (api.Identity, error) {
	var v api.Identity
	return v, c.Do(ctx, http.MethodGet, "/api/v1/id", nil, &v)
}

// Status is GET /api/v1/status.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var v api.Status
	return v, c.Do(ctx, http.MethodGet, "/api/v1/status", nil, &v)
}

// Peers is GET /api/v1/peers.
func (c *Client) Peers(ctx context.Context) ([]api.Peer, error) {
	var v []api.Peer
	return v, c.Do(ctx, http.MethodGet, "/api/v1/peers", nil, &v)
}

// Netcheck is GET /api/v1/netcheck.
func (c *Client) Netcheck(ctx context.Context) (api.Netcheck, error) {
	var v api.Netcheck
	return v, c.Do(ctx, http.MethodGet, "/api/v1/netcheck", nil, &v)
}

// Communities is GET /api/v1/communities.
func (c *Client) Communities(ctx context.Context) ([]api.Community, error) {
	var v []api.Community
	return v, c.Do(ctx, http.MethodGet, "/api/v1/communities", nil, &v)
}

// Community is GET /api/v1/communities/{id}.
func (c *Client) Community(ctx context.Context, id string) (api.CommunityDetail, error) {
	var v api.CommunityDetail
	if err := needID(id); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodGet, communityPath(id), nil, &v)
}

// CreateCommunity is POST /api/v1/communities.
func (c *Client) CreateCommunity(ctx context.Context, req api.CreateCommunityRequest) (api.CreatedCommunity, error) {
	var v api.CreatedCommunity
	return v, c.Do(ctx, http.MethodPost, "/api/v1/communities", req, &v)
}

// JoinCommunity is POST /api/v1/communities/join.
func (c *Client) JoinCommunity(ctx context.Context, invite string) (api.Joined, error) {
	var v api.Joined
	return v, c.Do(ctx, http.MethodPost, "/api/v1/communities/join", api.JoinRequest{Invite: invite}, &v)
}

// LeaveCommunity is DELETE /api/v1/communities/{id}.
func (c *Client) LeaveCommunity(ctx context.Context, id string) error {
	if err := needID(id); err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, communityPath(id), nil, nil)
}

// Invite is GET /api/v1/communities/{id}/invite.
func (c *Client) Invite(ctx context.Context, id string) (api.Invite, error) {
	var v api.Invite
	if err := needID(id); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodGet, communityPath(id)+"/invite", nil, &v)
}

func communityPath(id string) string {
	return "/api/v1/communities/" + url.PathEscape(id)
}

func needID(id string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("a community ID is needed")
	}
	return nil
}

// Publish is POST /api/v1/records.
func (c *Client) Publish(ctx context.Context, req api.PublishRequest) (api.Published, error) {
	var v api.Published
	return v, c.Do(ctx, http.MethodPost, "/api/v1/records", req, &v)
}

// Records is GET /api/v1/records with the query's filters.
func (c *Client) Records(ctx context.Context, q api.RecordQuery) ([]api.RecordView, error) {
	v := url.Values{}
	for k, val := range map[string]string{"community": q.Community, "kind": q.Kind, "author": q.Author, "subject": q.Subject} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/v1/records"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []api.RecordView
	return out, c.Do(ctx, http.MethodGet, path, nil, &out)
}

// Record is GET /api/v1/records/{cid}.
func (c *Client) Record(ctx context.Context, cid string) (api.RecordView, error) {
	var v api.RecordView
	if err := needID(cid); err != nil {
		return v, err
	}
	return v, c.Do(ctx, http.MethodGet, "/api/v1/records/"+url.PathEscape(cid), nil, &v)
}
