package ui

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// ctNode is a fake node for the Community and Trust pages: a backend, work
// and trust in one, with what was asked of it recorded.
type ctNode struct {
	mu        sync.Mutex
	self      string
	comms     []api.Community
	offers    []api.SkillOffer
	records   []api.RecordView
	trusted   []api.TrustedPeer
	rep       map[string][]api.RepEntry
	certs     []api.Certification
	published []api.PublishRequest
	joined    []string
}

func (n *ctNode) Identity() api.Identity                         { return api.Identity{PeerID: n.self} }
func (n *ctNode) Status(context.Context) api.Status              { return api.Status{PeerID: n.self} }
func (n *ctNode) Peers(context.Context) []api.Peer               { return nil }
func (n *ctNode) Netcheck(context.Context) api.Netcheck          { return api.Netcheck{} }
func (n *ctNode) Communities(context.Context) []api.Community    { return n.comms }
func (n *ctNode) LeaveCommunity(context.Context, string) error   { return nil }
func (n *ctNode) Agents(context.Context) []api.Agent             { return nil }
func (n *ctNode) LocalPolicy(context.Context) []api.ExitPolicy   { return nil }
func (n *ctNode) RemoveAgent(context.Context, string) error      { return nil }
func (n *ctNode) Tasks(context.Context, int) ([]api.Task, error) { return nil, nil }
func (n *ctNode) Community(context.Context, string) (api.CommunityDetail, error) {
	return api.CommunityDetail{}, nil
}
func (n *ctNode) CreateCommunity(context.Context, api.CreateCommunityRequest) (api.CreatedCommunity, error) {
	return api.CreatedCommunity{}, nil
}
func (n *ctNode) JoinCommunity(_ context.Context, invite string) (api.Joined, error) {
	if !strings.HasPrefix(invite, "agora-invite:") {
		return api.Joined{}, &api.Error{Code: http.StatusBadRequest, Message: "this is not an Agora invite; it starts with agora-invite:."}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.joined = append(n.joined, invite)
	return api.Joined{ID: "bafynew", Name: "new"}, nil
}
func (n *ctNode) Invite(_ context.Context, id string) (api.Invite, error) {
	return api.Invite{ID: id, Invite: "agora-invite:" + id}, nil
}
func (n *ctNode) Publish(_ context.Context, req api.PublishRequest) (api.Published, error) {
	if req.Kind == "attestation" {
		if p, _ := req.Body["predicate"].(string); !strings.Contains(p, ":") {
			return api.Published{}, &api.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("the record's body breaks the rules of its kind: the predicate %q is not a URI.", p)}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.published = append(n.published, req)
	return api.Published{CID: "bafypub" + strconv.Itoa(len(n.published))}, nil
}
func (n *ctNode) Records(_ context.Context, q api.RecordQuery) ([]api.RecordView, error) {
	var out []api.RecordView
	for _, r := range n.records {
		if q.Kind == "" || r.Kind == q.Kind {
			out = append(out, r)
		}
	}
	return out, nil
}
func (n *ctNode) Record(_ context.Context, cid string) (api.RecordView, error) {
	for _, r := range n.records {
		if r.CID == cid {
			return r, nil
		}
	}
	return api.RecordView{}, &api.Error{Code: http.StatusNotFound, Message: "the registry has no record with this ID; it may not have arrived yet"}
}

func (n *ctNode) AddAgent(context.Context, api.AddAgentRequest) (api.Agent, error) {
	return api.Agent{}, nil
}
func (n *ctNode) EnableAgent(context.Context, string, bool) (api.Agent, error) {
	return api.Agent{}, nil
}
func (n *ctNode) Skills(_ context.Context, community, skill string) ([]api.SkillOffer, error) {
	return n.offers, nil
}
func (n *ctNode) SubmitTask(context.Context, api.TaskRequest) (api.Task, error) {
	return api.Task{}, nil
}
func (n *ctNode) Task(context.Context, string) (api.Task, error)       { return api.Task{}, nil }
func (n *ctNode) CancelTask(context.Context, string) (api.Task, error) { return api.Task{}, nil }
func (n *ctNode) RunWorkflow(context.Context, api.WorkflowRun) (api.WorkflowResult, error) {
	return api.WorkflowResult{}, nil
}

func (n *ctNode) Reputation(_ context.Context, community, kind, peer string) ([]api.RepEntry, error) {
	if es, ok := n.rep[kind]; ok {
		return es, nil
	}
	return nil, &api.Error{Code: http.StatusServiceUnavailable, Message: "the reputation of this community is not computed yet; try again in a moment."}
}
func (n *ctNode) Certifications(context.Context, string, string) ([]api.Certification, error) {
	return n.certs, nil
}
func (n *ctNode) TrustedPeers(context.Context) ([]api.TrustedPeer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]api.TrustedPeer(nil), n.trusted...), nil
}
func (n *ctNode) AddTrustedPeer(_ context.Context, p string) (api.TrustedPeer, error) {
	if !strings.HasPrefix(p, "12D3Koo") {
		return api.TrustedPeer{}, &api.Error{Code: http.StatusBadRequest, Message: fmt.Sprintf("%q is not a peer ID: bad.", p)}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	tp := api.TrustedPeer{PeerID: p, Added: 1_700_000_000_000}
	n.trusted = append(n.trusted, tp)
	return tp, nil
}
func (n *ctNode) RemoveTrustedPeer(_ context.Context, p string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, tp := range n.trusted {
		if tp.PeerID == p {
			n.trusted = append(n.trusted[:i], n.trusted[i+1:]...)
			return nil
		}
	}
	return &api.Error{Code: http.StatusNotFound, Message: p + " is not among the peers this node trusts."}
}
func (n *ctNode) Rate(context.Context, string, api.RateRequest) (api.Rated, error) {
	return api.Rated{}, nil
}

const (
	ctSelf = "12D3KooWSelfAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	ctB    = "12D3KooWBobBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	ctC    = "12D3KooWCarolCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
)

func ctFeedback(cid, receipt, from, to string, created int64) api.RecordView {
	return api.RecordView{CID: cid, Kind: "feedback", Author: from, Created: created, Body: map[string]any{
		"score": 1000.0, "receipt": map[string]any{"cid": receipt, "requester": from, "executor": to, "skill": "text.stats"}}}
}

func newCTNode() *ctNode {
	return &ctNode{
		self:  ctSelf,
		comms: []api.Community{{ID: "bafycomm", Name: "garden", Members: 3}},
		offers: []api.SkillOffer{
			{Skill: "text.stats", Description: "Counts words", Providers: []api.Provider{
				{PeerID: ctB, Agent: "builtin", LatencyMS: 12, SuccessRate: 1, Trust: 1000, Certified: true},
				{PeerID: ctC, Agent: "broken", LatencyMS: 40, SuccessRate: 0.25, Load: 0.5, Trust: 120},
				{PeerID: ctSelf, Agent: "builtin", Self: true, SuccessRate: 1},
			}},
			{Skill: "math.eval", Description: "Evaluates arithmetic", Providers: []api.Provider{
				{PeerID: ctB, Agent: "builtin", SuccessRate: 1},
			}},
		},
		records: []api.RecordView{
			ctFeedback("bafyf1", "bafyr1", ctSelf, ctB, 1000),
			ctFeedback("bafyf2", "bafyr1", ctSelf, ctB, 2000), // a hand rating of the same task
			ctFeedback("bafyf3", "bafyr2", ctSelf, ctC, 3000),
			ctFeedback("bafyf4", "bafyr3", ctB, ctSelf, 4000),
			{CID: "bafya1", Kind: "attestation", Author: ctSelf, Created: 5000, Body: map[string]any{
				"subject": map[string]any{"type": "agent", "id": ctB + "/builtin"}, "predicate": "agora:audit/manual/v1", "verdict": "pass"}},
			{CID: "bafya2", Kind: "attestation", Author: ctB, Created: 6000, Body: map[string]any{
				"subject": map[string]any{"type": "peer", "id": ctC}, "predicate": "agora:audit/manual/v1", "verdict": "fail", "evidence": "nonsense"}},
		},
		rep: map[string][]api.RepEntry{"personal": {
			{PeerID: ctSelf, Trust: 0.5, Level: 1000, Rank: 1, Seed: true},
			{PeerID: ctB, Trust: 0.45, Level: 900, Rank: 2, Feedback: 3},
			{PeerID: ctC, Trust: 0.05, Level: 100, Feedback: 3, Distrusted: true},
		}},
		certs: []api.Certification{{Subject: "agent:" + ctB + "/builtin", Certified: true, Attestations: 2, Reasons: []string{"2 passing attestations from qualified auditors"}}},
	}
}

// ctServer serves the dashboard over the fake with a logged-in session;
// get and post send the session's cookie (post adds the CSRF token unless
// the form has one).
type ctServer struct {
	t    *testing.T
	srv  *httptest.Server
	csrf string
}

func newCTServer(t *testing.T, n *ctNode) *ctServer {
	t.Helper()
	s, err := New(Config{Backend: n, Work: n, Trust: n, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.sessions["ct-session"] = &session{csrf: "ct-csrf", expires: time.Now().Add(time.Hour)}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &ctServer{t: t, srv: srv, csrf: "ct-csrf"}
}

func (c *ctServer) do(method, path string, form url.Values) (int, string, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(&http.Cookie{Name: cookieName, Value: "ct-session"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (c *ctServer) get(path string) (int, string) {
	code, _, body := c.do(http.MethodGet, path, nil)
	return code, body
}

func (c *ctServer) post(path string, form url.Values) (int, string, string) {
	if !form.Has("csrf") {
		form.Set("csrf", c.csrf)
	}
	return c.do(http.MethodPost, path, form)
}

func TestDelegationEdges(t *testing.T) {
	recs := newCTNode().records
	recs = append(recs,
		ctFeedback("bafyself", "bafyr9", ctB, ctB, 1),                            // self-delegation
		api.RecordView{CID: "bafyodd", Kind: "feedback", Body: map[string]any{}}, // no receipt
	)
	got := delegationEdges(recs)
	want := []delegationEdge{
		{From: ctSelf, To: ctB, Tasks: 1, Last: time.UnixMilli(2000)},
		{From: ctSelf, To: ctC, Tasks: 1, Last: time.UnixMilli(3000)},
		{From: ctB, To: ctSelf, Tasks: 1, Last: time.UnixMilli(4000)},
	}
	// Sorted by requester then executor.
	if ctB < ctSelf {
		want = []delegationEdge{want[2], want[0], want[1]}
	}
	if len(got) != len(want) {
		t.Fatalf("edges %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].From != want[i].From || got[i].To != want[i].To || got[i].Tasks != want[i].Tasks {
			t.Errorf("edge %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if delegationEdges(nil) != nil {
		t.Error("no records, but edges")
	}
}

func TestDelegationGraph(t *testing.T) {
	if delegationGraph(ctSelf, nil) != "" {
		t.Fatal("a graph without edges")
	}
	edges := []delegationEdge{{From: ctSelf, To: ctB, Tasks: 3}, {From: ctB, To: ctSelf, Tasks: 1}, {From: ctSelf, To: ctC, Tasks: 1}}
	svg := string(delegationGraph(ctSelf, edges))
	els := svgElements(t, svg)
	if els[0].Name.Local != "svg" || svgAttr(els[0], "role") != "img" || !strings.Contains(svgAttr(els[0], "aria-label"), "this node to …BBBBBB, 3 tasks") {
		t.Fatalf("root %+v", els[0])
	}
	type pt struct{ x, y float64 }
	nodes := map[string]pt{}
	var lines []xml.StartElement
	var edgeGroups []xml.StartElement
	var peer string
	for _, e := range els {
		switch e.Name.Local {
		case "g":
			peer = svgAttr(e, "data-peer")
			if svgAttr(e, "class") == "graph-edge" {
				edgeGroups = append(edgeGroups, e)
			}
		case "circle":
			x, _ := strconv.ParseFloat(svgAttr(e, "cx"), 64)
			y, _ := strconv.ParseFloat(svgAttr(e, "cy"), 64)
			nodes[peer] = pt{x, y}
		case "line":
			lines = append(lines, e)
		}
	}
	if len(nodes) != 3 || len(lines) != 3 || len(edgeGroups) != 3 {
		t.Fatalf("%d nodes, %d lines, %d edges:\n%s", len(nodes), len(lines), len(edgeGroups), svg)
	}
	// The viewBox holds every node, and no more than the three need.
	var vb [4]float64
	if _, err := fmt.Sscanf(svgAttr(els[0], "viewBox"), "%g %g %g %g", &vb[0], &vb[1], &vb[2], &vb[3]); err != nil {
		t.Fatal(err)
	}
	for p, c := range nodes {
		if c.x-dgNodeRadius < vb[0] || c.y-dgNodeRadius < vb[1] || c.x+dgNodeRadius > vb[0]+vb[2] || c.y+dgNodeRadius > vb[1]+vb[3] {
			t.Errorf("%s at %v is outside the viewBox %v", p, c, vb)
		}
	}
	if vb[3] > 1.5*dgRadius+2*dgNodeRadius+24 {
		t.Errorf("the viewBox %v is taller than three nodes need", vb)
	}
	// This node is at the top; every node is on the circle.
	if s := nodes[ctSelf]; math.Abs(s.x-dgCX) > 0.1 || math.Abs(s.y-(dgCY-dgRadius)) > 0.1 {
		t.Errorf("this node at %v", s)
	}
	for p, c := range nodes {
		if r := math.Hypot(c.x-dgCX, c.y-dgCY); math.Abs(r-dgRadius) > 0.1 {
			t.Errorf("%s is %.1f from the centre", p, r)
		}
	}
	if svgAttr(edgeGroups[0], "data-from") != ctSelf || svgAttr(edgeGroups[0], "data-to") != ctB || svgAttr(edgeGroups[0], "data-tasks") != "3" {
		t.Errorf("first edge %+v", edgeGroups[0])
	}
	// a → b and b → a do not overlap, and more tasks draw thicker.
	if svgAttr(lines[0], "x1") == svgAttr(lines[1], "x2") && svgAttr(lines[0], "y1") == svgAttr(lines[1], "y2") {
		t.Errorf("opposite edges overlap: %v %v", lines[0], lines[1])
	}
	if w0, w1 := svgAttr(lines[0], "stroke-width"), svgAttr(lines[1], "stroke-width"); w0 <= w1 {
		t.Errorf("stroke widths %s (3 tasks) and %s (1 task)", w0, w1)
	}
	// Arrows end short of the executor's circle.
	x2, _ := strconv.ParseFloat(svgAttr(lines[0], "x2"), 64)
	y2, _ := strconv.ParseFloat(svgAttr(lines[0], "y2"), 64)
	if d := math.Hypot(x2-nodes[ctB].x, y2-nodes[ctB].y); d < dgNodeRadius {
		t.Errorf("the arrow ends inside the node (%.1f from its centre)", d)
	}

	// One edge between two peers, hostile IDs escaped.
	svg = string(delegationGraph("", []delegationEdge{{From: `<x&"y>`, To: "z", Tasks: 1}}))
	if len(svgElements(t, svg)) == 0 || strings.Contains(svg, `<x&`) {
		t.Fatalf("not escaped: %s", svg)
	}
}

func TestCommunityFilter(t *testing.T) {
	row := communitySkill{Skill: "text.stats", Description: "Counts words", Providers: []communityProvider{
		{Peer: ctB, Agent: "builtin", Certified: true}, {Peer: ctC, Agent: "broken"}}}
	peers := func(r communitySkill) string {
		var out []string
		for _, p := range r.Providers {
			out = append(out, p.Agent)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		q, skill  string
		certified bool
		want      string
	}{
		{"", "", false, "builtin,broken"},
		{"TEXT.stats", "", false, "builtin,broken"},
		{"counts", "", false, "builtin,broken"},
		{"broken", "", false, "broken"},
		{"carol", "", false, "broken"},
		{"nothing", "", false, ""},
		{"", "text.stats", false, "builtin,broken"},
		{"", "no.such.skill", false, ""},
		{"", "", true, "builtin"},
		{"broken", "", true, ""},
	} {
		if got := peers(communityFilter(row, tc.q, tc.skill, tc.certified)); got != tc.want {
			t.Errorf("q %q skill %q certified %v: %q, want %q", tc.q, tc.skill, tc.certified, got, tc.want)
		}
	}
	if len(row.Providers) != 2 {
		t.Fatal("filtering changed the row it was given")
	}
}

func TestCommunityPage(t *testing.T) {
	n := newCTNode()
	c := newCTServer(t, n)

	code, page := c.get("/community")
	if code != http.StatusOK {
		t.Fatalf("GET /community: %d\n%s", code, page)
	}
	for _, want := range []string{
		`data-skill="text.stats"`, `data-peer="` + ctB + `"`, `data-peer="` + ctC + `"`, `✓ certified`, `40 ms`, `25%`,
		`id="delegations"`, `data-from="` + ctSelf + `" data-to="` + ctB + `"`, `data-from="` + ctSelf + `" data-to="` + ctC + `"`,
		`class="chart"`, `<label for="invite-bafycomm">Invite to garden</label>`, `agora-invite:bafycomm</textarea>`,
		`name="csrf" value="ct-csrf"`, `aria-current="page"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	_, page = c.get("/community?q=math")
	if strings.Contains(page, `data-skill="text.stats"`) || !strings.Contains(page, `data-skill="math.eval"`) {
		t.Error("q=math did not filter to math.eval")
	}
	_, page = c.get("/community?skill=no.such.skill")
	if strings.Contains(page, `data-skill=`) || !strings.Contains(page, "No skill or provider matches") || !strings.Contains(page, `<option value="no.such.skill" selected>`) {
		t.Error("an unknown skill still lists skills")
	}
	_, page = c.get("/community?certified=1")
	if strings.Contains(page, `data-testid="provider" data-peer="`+ctC+`"`) || !strings.Contains(page, `data-testid="provider" data-peer="`+ctB+`"`) {
		t.Error("certified=1 kept an uncertified provider")
	}
	if code, page = c.get("/community?community=bafynope"); code != http.StatusNotFound || !strings.Contains(page, "not in that community") {
		t.Errorf("an unknown community: %d", code)
	}

	// Joining: the API's sentence at the field, and nothing joined.
	code, _, page = c.post("/community/join", url.Values{"invite": {"hello"}})
	if code != http.StatusBadRequest || !strings.Contains(page, `id="join-invite-err"`) || !strings.Contains(page, "this is not an Agora invite") ||
		!strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, ">hello</textarea>") {
		t.Fatalf("bad invite: %d\n%s", code, page)
	}
	code, loc, _ := c.post("/community/join", url.Values{"invite": {" agora-invite:xyz\n"}})
	if code != http.StatusSeeOther || loc != "/community?community=bafynew" || len(n.joined) != 1 || n.joined[0] != "agora-invite:xyz" {
		t.Fatalf("join: %d %q %v", code, loc, n.joined)
	}
	if code, _, _ = c.post("/community/join", url.Values{"invite": {"agora-invite:xyz"}, "csrf": {"wrong"}}); code != http.StatusForbidden || len(n.joined) != 1 {
		t.Fatalf("join without the CSRF token: %d", code)
	}
}

func TestCommunityPageWithoutCommunities(t *testing.T) {
	n := newCTNode()
	n.comms, n.offers, n.records = nil, nil, nil
	c := newCTServer(t, n)
	code, page := c.get("/community")
	if code != http.StatusOK || !strings.Contains(page, "Not in any community yet") || strings.Contains(page, `id="delegations"`) {
		t.Fatalf("%d\n%s", code, page)
	}
}
