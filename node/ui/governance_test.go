package ui

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/config"
)

func TestGovTallyBars(t *testing.T) {
	svg := string(govTallyBars([]string{"yes", "no", `<b>"x"&`}, map[string]uint64{"yes": 2000, "no": 1000}, 3000, 500, "yes"))
	// Well-formed XML, so a browser draws it as SVG.
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not XML: %v\n%s", err, svg)
	}
	for _, want := range []string{
		`role="img"`, `aria-label="Tally: yes 66.6% (2000), no 33.3% (1000), &lt;b&gt;&#34;x&#34;&amp; 0.0% (0); threshold 50.0%"`,
		`<title>Tally: yes`,
		`class="gov-bar gov-win" x="0" y="18" width="266" height="12" data-choice="yes" data-count="2000"`,
		`class="gov-bar" x="0" y="56" width="133" height="12" data-choice="no" data-count="1000"`,
		`width="0" height="12" data-choice="&lt;b&gt;&#34;x&#34;&amp;"`,
		`<line class="gov-thr" x1="200" x2="200" y1="0" y2="106"/>`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("lacks %s:\n%s", want, svg)
		}
	}
	if strings.Contains(svg, "<b>") {
		t.Errorf("a choice's markup got through:\n%s", svg)
	}

	// Nothing counted yet: empty bars, no division by zero.
	empty := string(govTallyBars([]string{"a", "b"}, nil, 0, 0, ""))
	if !strings.Contains(empty, "no votes counted yet") || strings.Count(empty, `width="0"`) != 2 || strings.Contains(empty, "gov-thr") {
		t.Errorf("empty tally:\n%s", empty)
	}
	// A count above the base (approval: everyone approves of both) fills
	// the bar and no more.
	full := string(govTallyBars([]string{"a", "b"}, map[string]uint64{"a": 3000, "b": 5000}, 3000, 1000, ""))
	if strings.Count(full, `width="400" height="12" data-choice`) != 2 || !strings.Contains(full, `x1="400"`) {
		t.Errorf("full bars:\n%s", full)
	}
	// A long choice is clipped in the picture (the table shows it whole).
	long := string(govTallyBars([]string{strings.Repeat("é", 60), "b"}, nil, 0, 0, ""))
	if !strings.Contains(long, strings.Repeat("é", barsLabel-1)+"…") || strings.Contains(long, strings.Repeat("é", barsLabel)+"<") {
		t.Errorf("long label:\n%s", long)
	}
}

func TestGovTallyBase(t *testing.T) {
	tv := api.TallyView{Counts: map[string]uint64{"a": 2000, "b": 1500}, Weight: 2500}
	for method, want := range map[string]uint64{"single": 2500, "approval": 2500, "ranked": 3500, "quadratic": 3500} {
		if got := govTallyBase(method, tv); got != want {
			t.Errorf("%s: base %d, want %d", method, got, want)
		}
	}
	if got := govShare(1, 3); got != "33.3%" {
		t.Errorf("share %s", got)
	}
}

func TestGovRankedBallot(t *testing.T) {
	names := []string{"mon", "wed", "fri"}
	for _, c := range []struct {
		ranks []string
		order []int
		bad   []int
		msg   string
	}{
		{[]string{"2", "1", "3"}, []int{1, 0, 2}, nil, ""},
		{[]string{"", " 3", "1"}, []int{2, 1}, nil, ""}, // gaps and blanks are fine
		{[]string{"1", "", "1"}, nil, []int{0, 2}, `"mon" and "fri" both have rank 1`},
		{[]string{"0", "", ""}, nil, []int{0}, "from 1 to 3"},
		{[]string{"", "4", ""}, nil, []int{1}, "from 1 to 3"},
		{[]string{"", "first", ""}, nil, []int{1}, `not "first"`},
		{[]string{"", " ", ""}, nil, nil, "Rank at least one"},
	} {
		order, bad, msg := govRankedBallot(names, c.ranks)
		if !slices.Equal(order, c.order) || !slices.Equal(bad, c.bad) || (c.msg == "") != (msg == "") || !strings.Contains(msg, c.msg) {
			t.Errorf("%q: order %v bad %v %q; want %v %v %q", c.ranks, order, bad, msg, c.order, c.bad, c.msg)
		}
	}
}

func TestGovQuadraticBallot(t *testing.T) {
	names := []string{"a", "b", "c"}
	picked, credits, bad, msg := govQuadraticBallot(names, []string{"600", "", "0"})
	if !slices.Equal(picked, []int{0}) || !slices.Equal(credits, []int64{600}) || bad != nil || msg != "" {
		t.Errorf("got %v %v %v %q", picked, credits, bad, msg)
	}
	// The sum is the API's to refuse: it says so in its own sentence.
	picked, credits, _, msg = govQuadraticBallot(names, []string{"600", "600", "1"})
	if !slices.Equal(picked, []int{0, 1, 2}) || !slices.Equal(credits, []int64{600, 600, 1}) || msg != "" {
		t.Errorf("got %v %v %q", picked, credits, msg)
	}
	if _, _, bad, msg := govQuadraticBallot(names, []string{"", "-1", ""}); !slices.Equal(bad, []int{1}) || !strings.Contains(msg, `"b"`) {
		t.Errorf("negative: %v %q", bad, msg)
	}
	if _, _, _, msg := govQuadraticBallot(names, []string{"", "0", ""}); !strings.Contains(msg, "at least one") {
		t.Errorf("nothing: %q", msg)
	}
}

func TestGovFormFields(t *testing.T) {
	for in, want := range map[string][]string{
		"yes,no":              {"yes", "no"},
		" yes , no ,":         {"yes", "no"},
		"yes, and more\nno\n": {"yes, and more", "no"},
		"a\r\n\r\nb":          {"a", "b"},
		"":                    nil,
	} {
		if got := govChoices(in); !slices.Equal(got, want) {
			t.Errorf("choices %q: %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]int64{"0": 0, "300": 300, "50%": 500, "12.5%": 125, "100%": 1000, "2000": 2000} {
		got, msg := govThousandths("quorum", in)
		if msg != "" || got == nil || *got != want {
			t.Errorf("thousandths %q: %v %q, want %d", in, got, msg, want)
		}
	}
	for _, in := range []string{"half", "12.25%", "101%", "-5%", "%", "1e3"} {
		if got, msg := govThousandths("quorum", in); got != nil || !strings.Contains(msg, "quorum") {
			t.Errorf("thousandths %q: %v %q", in, got, msg)
		}
	}
	if got, msg := govThousandths("quorum", ""); got != nil || msg != "" {
		t.Errorf("blank: %v %q", got, msg)
	}
	for in, want := range map[string]int64{"": 0, "6": 6, "6s": 6, "90m": 5400, "48h": 172800} {
		if got, msg := govDuration(in); got != want || msg != "" {
			t.Errorf("duration %q: %d %q, want %d", in, got, msg, want)
		}
	}
	for _, in := range []string{"0", "-3", "1.5s", "soon", "-1m", "7d"} {
		if got, msg := govDuration(in); got != 0 || msg == "" {
			t.Errorf("duration %q: %d %q", in, got, msg)
		}
	}
}

func TestGovProposeField(t *testing.T) {
	for msg, want := range map[string]string{
		"the proposal would never count: its quorum 0 is under the community's vote.quorum=200.":               "quorum",
		"the proposal would never count: its threshold 1 is under the community's vote.threshold=500.":         "threshold",
		"the proposal would never count: its voting period of 6 s is under the community's vote.duration_s=7.": "duration",
		"the action: the community policy has no such key: \"vote.quorom\"; the keys are vote.quorum, ...":     "action",
		"invalid record body: the voting period must be 5 seconds to 366 days long, not 1000 ms":               "duration",
		"invalid record body: a proposal needs 2 to 32 choices, not 1":                                         "choices",
		"invalid record body: the choice \"yes\" is listed twice":                                              "choices",
		"invalid record body: proposal title must not be empty":                                                "title",
		"unknown field: voting method \"plural\"":                                                              "method",
		"unknown field: weighting \"wealth\"":                                                                  "weighting",
		"this node is in 2 communities; choose one with --community: ...":                                      "form",
	} {
		if got := govProposeField(msg); got != want {
			t.Errorf("%q → %s, want %s", msg, got, want)
		}
	}
}

func TestGovRelTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	for d, want := range map[time.Duration]string{
		0: "now", 400 * time.Millisecond: "now", 5 * time.Second: "in 5 s", -59 * time.Second: "59 s ago",
		3 * time.Minute: "in 3 min", -2 * time.Hour: "2 h ago", 47 * time.Hour: "in 47 h", 7 * 24 * time.Hour: "in 7 days",
	} {
		if got := govRelTime(now, now.Add(d).UnixMilli()); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

func TestConfigSettings(t *testing.T) {
	c := config.Default()
	got := ConfigSettings(&c)
	if len(got) != len(config.Keys()) {
		t.Fatalf("%d settings for %d keys", len(got), len(config.Keys()))
	}
	i := slices.IndexFunc(got, func(s Setting) bool { return s.Key == "api.listen" })
	if i < 0 || got[i] != (Setting{Key: "api.listen", Value: "127.0.0.1:4243", Help: got[i].Help, Env: "AGORA_API_LISTEN", Flag: "--api-listen"}) || got[i].Help == "" {
		t.Fatalf("api.listen: %+v", got)
	}
}

// govFakeBackend is a node in one community.
type govFakeBackend struct{ api.Backend }

func (govFakeBackend) Communities(context.Context) []api.Community {
	return []api.Community{{ID: "bafycomm", Name: "test", Members: 3}}
}

// govFake keeps proposals and the last requests; Propose and Vote fail
// with err when set.
type govFake struct {
	props []api.ProposalView
	tally api.TallyView
	err   error
	votes []api.VoteRequest
	made  []api.ProposeRequest
}

func (g *govFake) Propose(_ context.Context, req api.ProposeRequest) (api.Proposed, error) {
	if g.err != nil {
		return api.Proposed{}, g.err
	}
	g.made = append(g.made, req)
	return api.Proposed{ID: "bafynew"}, nil
}

func (g *govFake) Proposals(context.Context, string, string) ([]api.ProposalView, error) {
	return g.props, nil
}

func (g *govFake) Vote(_ context.Context, _ string, req api.VoteRequest) (api.Voted, error) {
	if g.err != nil {
		return api.Voted{}, g.err
	}
	g.votes = append(g.votes, req)
	return api.Voted{CID: "bafyvote"}, nil
}

func (g *govFake) Tally(_ context.Context, _, id string) (api.TallyView, error) {
	if id != g.tally.ID {
		return api.TallyView{}, &api.Error{Code: http.StatusNotFound, Message: "this node holds no proposal " + id + " in community bafycomm; it may not have arrived yet."}
	}
	return g.tally, nil
}

func (g *govFake) Policy(context.Context, string) (api.PolicyView, error) {
	return api.PolicyView{Community: "bafycomm", Founders: []string{"12D3Founder"},
		Keys: []api.PolicyKeyValue{{Key: "certify.min_attestations", Value: 1, SetBy: "bafyp1", Help: "Passing attestations"},
			{Key: "vote.quorum", Value: 200, Help: "Share"}}}, nil
}

func TestGovernancePages(t *testing.T) {
	now := time.Now()
	gov := &govFake{
		props: []api.ProposalView{{ID: "bafyp1", Title: "Rank the days", Status: "open", Ends: now.Add(time.Hour).UnixMilli(),
			Start: now.UnixMilli(), Method: "ranked", Weighting: "member", Quorum: 200, Threshold: 500,
			Choices: []string{"mon", "wed", "fri"}, Body: "# Heading\n<script>alert(1)</script> *not bold*", Action: "set-policy certify.min_attestations=1"}},
		tally: api.TallyView{ID: "bafyp1", Status: "open", Counts: map[string]uint64{"mon": 1000, "wed": 2000, "fri": 0}, Voters: 3,
			Weight: 3000, Eligible: 3000, Fingerprint: "abcd", Tallies: 2,
			Rounds:        []map[string]uint64{{"mon": 1000, "wed": 2000}},
			Disagreements: []api.Disagreement{{PeerID: "12D3Other", Fingerprint: "ef01", Status: "open", Voters: 2}}},
	}
	s, err := New(Config{Backend: govFakeBackend{}, Gov: gov})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := s.LoginCode()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/ui/login?code="+url.QueryEscape(code), nil))
	cookie := w.Result().Cookies()[0]
	csrf := s.sessions[cookie.Value].csrf
	do := func(method, path string, form url.Values) (int, string, string) {
		t.Helper()
		r := httptest.NewRequest(method, path, nil)
		if form != nil {
			form.Set("csrf", csrf)
			r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code, w.Body.String(), w.Header().Get("Location")
	}
	must := func(code int, body string, wantCode int, wants ...string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("status %d, want %d:\n%s", code, wantCode, body)
		}
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Fatalf("page lacks %s:\n%s", want, body)
			}
		}
	}

	c, body, _ := do("GET", "/governance", nil)
	must(c, body, 200, `href="/governance/bafyp1"`, `data-choice="wed" data-count="2000"`, `placeholder="200"`,
		`<code>certify.min_attestations</code>`, `proposal bafyp1`, `12D3Founder`, `aria-current="page">Governance`)

	// Proposing: the form's fields reach the API as they should.
	c, body, loc := do("POST", "/governance", url.Values{"title": {" Lower it "}, "body": {"Why:\r\nfew auditors"}, "choices": {"yes\r\nno\r\n"}, "method": {"single"},
		"weighting": {"member"}, "quorum": {"25%"}, "threshold": {""}, "duration": {"6s"}, "action": {"set-policy certify.min_attestations=1"}})
	must(c, body, http.StatusSeeOther)
	want := api.ProposeRequest{Community: "bafycomm", Title: "Lower it", Choices: []string{"yes", "no"}, Method: "single", Weighting: "member",
		DurationS: 6, Action: "set-policy certify.min_attestations=1"}
	got := gov.made[0]
	if loc != "/governance/bafynew?done=proposed" || got.Quorum == nil || *got.Quorum != 250 || got.Threshold != nil {
		t.Fatalf("redirect %q, request %+v", loc, got)
	}
	got.Quorum = nil
	if !slices.Equal(got.Choices, want.Choices) || got.Body != "Why:\nfew auditors" || got.Title != want.Title || got.DurationS != 6 || got.Action != want.Action || got.Community != want.Community {
		t.Fatalf("request %+v, want %+v", got, want)
	}
	// The form's own errors and the API's are shown at their field, with
	// what was typed kept.
	c, body, _ = do("POST", "/governance", url.Values{"title": {"T"}, "choices": {"a,b"}, "duration": {"soon"}})
	must(c, body, http.StatusBadRequest, `id="p-duration-err">Give the duration in seconds`, `value="soon"`)
	gov.err = &api.Error{Code: 400, Message: "the proposal would never count: its quorum 0 is under the community's vote.quorum=200."}
	c, body, _ = do("POST", "/governance", url.Values{"title": {"T"}, "choices": {"a,b"}, "quorum": {"0"}})
	must(c, body, http.StatusBadRequest, `id="p-quorum-err">The proposal would never count: its quorum 0`, `aria-describedby="p-quorum-help p-quorum-err" aria-invalid="true"`)
	gov.err = nil

	// The proposal page: body as text, never as markup; tally; agreement.
	c, body, _ = do("GET", "/governance/bafyp1?done=voted", nil)
	must(c, body, 200, `<pre class="gov-body" data-testid="body"># Heading
&lt;script&gt;alert(1)&lt;/script&gt; *not bold*</pre>`, "Your vote is published", `data-testid="agree">1 of 2`, "12D3Other",
		`<th scope="row">1</th><td class="gov-num">1000</td><td class="gov-num">2000</td><td class="gov-num">0</td>`,
		`name="rank-2"`, `set-policy certify.min_attestations=1`)
	if strings.Contains(body, `data-testid="final"`) {
		t.Fatal("an open vote shows as final")
	}

	// A ranked ballot is ordered by rank; a duplicate is refused at the field.
	c, body, loc = do("POST", "/governance/bafyp1", url.Values{"rank-0": {"2"}, "rank-1": {""}, "rank-2": {"1"}})
	must(c, body, http.StatusSeeOther)
	if loc != "/governance/bafyp1?done=voted" || !slices.Equal(gov.votes[0].Choices, []string{"fri", "mon"}) {
		t.Fatalf("redirect %q, vote %+v", loc, gov.votes)
	}
	c, body, _ = do("POST", "/governance/bafyp1", url.Values{"rank-0": {"1"}, "rank-1": {"1"}, "rank-2": {""}})
	must(c, body, http.StatusBadRequest, `id="v-err" role="alert">&#34;mon&#34; and &#34;wed&#34; both have rank 1`, `name="rank-1" min="1" max="3" step="1" size="3" value="1" aria-invalid="true"`)
	// The API's refusal is shown at the ballot too.
	gov.err = &api.Error{Code: 400, Message: "the vote on \"Rank the days\" closed at 2026-01-01T00:00:00Z."}
	c, body, _ = do("POST", "/governance/bafyp1", url.Values{"rank-0": {"1"}})
	must(c, body, http.StatusBadRequest, `The vote on &#34;Rank the days&#34; closed`)
	gov.err = nil

	// Final: the marker the live page waits for.
	gov.tally.Status, gov.tally.Final, gov.tally.Winner = "passed", true, "wed"
	gov.props[0].Status, gov.props[0].Final = "passed", true
	c, body, _ = do("GET", "/governance/bafyp1", nil)
	must(c, body, 200, `data-testid="final"`, "Voting closed", `class="gov-bar gov-win"`)
	if strings.Contains(body, `name="rank-0"`) {
		t.Fatal("a closed vote still shows its ballot")
	}

	// Other methods' ballots.
	gov.tally.Status, gov.tally.Final = "open", false
	for method, wants := range map[string][]string{
		"single":    {`type="radio" id="v-0" name="choice" value="0"`},
		"approval":  {`type="checkbox" id="v-2" name="choice" value="2"`},
		"quadratic": {`name="credits-1" min="0" max="1000"`},
	} {
		gov.props[0].Method = method
		c, body, _ = do("GET", "/governance/bafyp1", nil)
		must(c, body, 200, wants...)
	}
	gov.props[0].Method = "approval"
	gov.votes = nil
	c, body, _ = do("POST", "/governance/bafyp1", url.Values{"choice": {"0", "2"}})
	must(c, body, http.StatusSeeOther)
	if !slices.Equal(gov.votes[0].Choices, []string{"mon", "fri"}) {
		t.Fatalf("approval vote %+v", gov.votes)
	}
	c, body, _ = do("POST", "/governance/bafyp1", url.Values{"choice": {}})
	must(c, body, http.StatusBadRequest, "Tick at least one")
	gov.props[0].Method = "quadratic"
	gov.votes = nil
	c, body, _ = do("POST", "/governance/bafyp1", url.Values{"credits-0": {"300"}, "credits-1": {"0"}, "credits-2": {"700"}})
	must(c, body, http.StatusSeeOther)
	if v := gov.votes[0]; !slices.Equal(v.Choices, []string{"mon", "fri"}) || !slices.Equal(v.Credits, []int64{300, 700}) {
		t.Fatalf("quadratic vote %+v", v)
	}

	// Unknown proposals and communities are a 404 that says what to do.
	c, body, _ = do("GET", "/governance/bafynope", nil)
	must(c, body, http.StatusNotFound, "This node holds no proposal bafynope", "Governance page lists")
	c, body, _ = do("POST", "/governance/bafynope", url.Values{"choice": {"0"}})
	must(c, body, http.StatusNotFound)
	c, body, _ = do("GET", "/governance?community=bafyother", nil)
	must(c, body, http.StatusNotFound, "not in community bafyother")

	// Settings: read-only, every key.
	s.cfg.Settings = func() []Setting { c := config.Default(); return ConfigSettings(&c) }
	c, body, _ = do("GET", "/settings", nil)
	must(c, body, 200, `data-key="api.listen"`, "<code>127.0.0.1:4243</code>", "AGORA_API_LISTEN", "--api-listen", "agora config set KEY VALUE")
	if regexp.MustCompile(`<form[^>]*method="post"[^>]*action="/settings`).MatchString(body) {
		t.Fatal("the settings page has a form")
	}
}
