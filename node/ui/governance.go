package ui

// The Governance pages: a community's proposals with live tally bars, a
// form to propose, one page per proposal with its tally, the members'
// agreement on it and a ballot for its method, and the policy the passed
// proposals derived. Everything goes through api.Governance.

import (
	"cmp"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agora-p2p/agora/node/api"
)

func init() {
	addNav(50, "governance", "Governance", "/governance")
	addRoute("GET /governance", (*Server).govList)
	addRoute("POST /governance", (*Server).govPropose)
	addRoute("GET /governance/{id}", (*Server).govProposal)
	addRoute("POST /governance/{id}", (*Server).govVote)
	addStyle("governance.css")
}

// govScope is the community the governance pages show, and how links keep
// it: the query string is only needed when the node is in several.
type govScope struct {
	Community   api.Community
	Communities []api.Community
	Query       string // "" or "?community=ID"
}

func (g govScope) proposalHref(id string) string {
	if id == "" {
		return ""
	}
	return "/governance/" + url.PathEscape(id) + g.Query
}

// govScope picks the community the request names (query or form field
// "community"), else the node's first. It answers the client itself and
// returns false when there is nothing to show.
func (s *Server) govScope(w http.ResponseWriter, r *http.Request) (govScope, bool) {
	if s.cfg.Gov == nil {
		s.problem(w, http.StatusServiceUnavailable, "Governance is off",
			"This node does not take part in governance, so there are no proposals or policy to show.")
		return govScope{}, false
	}
	all := s.cfg.Backend.Communities(r.Context())
	if len(all) == 0 {
		s.problem(w, http.StatusNotFound, "Not in a community yet",
			"Proposals and policy belong to a community. Create one with `agora community create NAME` or join one with `agora community join INVITE`.")
		return govScope{}, false
	}
	g := govScope{Community: all[0], Communities: all}
	if want := r.FormValue("community"); want != "" {
		i := slices.IndexFunc(all, func(c api.Community) bool { return c.ID == want })
		if i < 0 {
			s.problem(w, http.StatusNotFound, "No such community",
				fmt.Sprintf("This node is not in community %s. The Governance page shows the communities it is in.", want))
			return govScope{}, false
		}
		g.Community = all[i]
	}
	if len(all) > 1 {
		g.Query = "?community=" + url.QueryEscape(g.Community.ID)
	}
	return g, true
}

// govForm is the propose form as typed, shown again with errors.
type govForm struct {
	Title, Body, Choices, Method, Weighting, Quorum, Threshold, Duration, Action string
}

type govRow struct {
	api.ProposalView
	Href string
	Ends govTime
	Bars template.HTML
}

// govTime is a time shown relative to now, with the exact time on hover
// and for machines.
type govTime struct{ Rel, ISO, Full string }

func newGovTime(now time.Time, ms int64) govTime {
	t := time.UnixMilli(ms)
	return govTime{Rel: govRelTime(now, ms), ISO: t.UTC().Format(time.RFC3339), Full: t.Local().Format("2006-01-02 15:04:05 MST")}
}

type govPolicyKey struct {
	api.PolicyKeyValue
	Href string
}

type govSetBy struct {
	ID, SetBy, Href string
}

type govListData struct {
	govScope
	Proposals []govRow
	Err       string
	Form      govForm
	Errs      map[string]string // form field → the API's sentence
	Policy    *api.PolicyView
	PolicyErr string
	Keys      []govPolicyKey
	Banned    []govSetBy
	Certified []govSetBy
	Charter   *govSetBy
	// Defaults are the policy's values the empty fields take.
	Defaults struct{ Quorum, Threshold, Duration string }
	Done     string
}

func (s *Server) govList(w http.ResponseWriter, r *http.Request, sess *session) {
	g, ok := s.govScope(w, r)
	if !ok {
		return
	}
	s.renderGovList(w, r, sess, g, http.StatusOK, govForm{Method: "single", Weighting: "member"}, nil)
}

func (s *Server) renderGovList(w http.ResponseWriter, r *http.Request, sess *session, g govScope, status int, form govForm, errs map[string]string) {
	ctx, now := r.Context(), s.cfg.Now()
	d := govListData{govScope: g, Form: form, Errs: errs}
	props, err := s.cfg.Gov.Proposals(ctx, g.Community.ID, "")
	if err != nil {
		d.Err = s.apiMessage(err)
	}
	// Newest first: the open questions are usually the recent ones.
	slices.SortStableFunc(props, func(a, b api.ProposalView) int {
		return cmp.Or(cmp.Compare(b.Start, a.Start), strings.Compare(a.ID, b.ID))
	})
	for _, p := range props {
		row := govRow{ProposalView: p, Href: g.proposalHref(p.ID), Ends: newGovTime(now, p.Ends)}
		if t, err := s.cfg.Gov.Tally(ctx, g.Community.ID, p.ID); err == nil {
			row.Bars = govTallyBars(p.Choices, t.Counts, govTallyBase(p.Method, t), p.Threshold, t.Winner)
		}
		d.Proposals = append(d.Proposals, row)
	}
	if pol, err := s.cfg.Gov.Policy(ctx, g.Community.ID); err != nil {
		d.PolicyErr = s.apiMessage(err)
	} else {
		d.Policy = &pol
		for _, k := range pol.Keys {
			d.Keys = append(d.Keys, govPolicyKey{k, g.proposalHref(k.SetBy)})
			v := strconv.FormatInt(k.Value, 10)
			switch k.Key {
			case "vote.quorum":
				d.Defaults.Quorum = v
			case "vote.threshold":
				d.Defaults.Threshold = v
			case "vote.duration_s":
				d.Defaults.Duration = v
			}
		}
		for _, b := range pol.Banned {
			d.Banned = append(d.Banned, govSetBy{b.ID, b.SetBy, g.proposalHref(b.SetBy)})
		}
		for _, c := range pol.Certified {
			d.Certified = append(d.Certified, govSetBy{c.ID, c.SetBy, g.proposalHref(c.SetBy)})
		}
		if c := pol.Charter; c != nil {
			d.Charter = &govSetBy{c.ID, c.SetBy, g.proposalHref(c.SetBy)}
		}
	}
	s.render(w, status, "governance.html", page{Title: "Governance", Nav: "governance", CSRF: sess.csrf, Data: d})
}

func (s *Server) govPropose(w http.ResponseWriter, r *http.Request, sess *session) {
	g, ok := s.govScope(w, r)
	if !ok {
		return
	}
	f := govForm{Title: r.PostFormValue("title"), Body: r.PostFormValue("body"), Choices: r.PostFormValue("choices"),
		Method: r.PostFormValue("method"), Weighting: r.PostFormValue("weighting"), Quorum: strings.TrimSpace(r.PostFormValue("quorum")),
		Threshold: strings.TrimSpace(r.PostFormValue("threshold")), Duration: strings.TrimSpace(r.PostFormValue("duration")),
		Action: strings.TrimSpace(r.PostFormValue("action"))}
	req := api.ProposeRequest{Community: g.Community.ID, Title: strings.TrimSpace(f.Title), Body: govLines(f.Body),
		Choices: govChoices(f.Choices), Method: f.Method, Weighting: f.Weighting, Action: f.Action}
	errs := map[string]string{}
	var msg string
	if req.Quorum, msg = govThousandths("quorum", f.Quorum); msg != "" {
		errs["quorum"] = msg
	}
	if req.Threshold, msg = govThousandths("threshold", f.Threshold); msg != "" {
		errs["threshold"] = msg
	}
	if req.DurationS, msg = govDuration(f.Duration); msg != "" {
		errs["duration"] = msg
	}
	if len(errs) == 0 {
		out, err := s.cfg.Gov.Propose(r.Context(), req)
		if err == nil {
			http.Redirect(w, r, g.proposalHref(out.ID)+govSep(g.Query)+"done=proposed", http.StatusSeeOther)
			return
		}
		msg := s.apiMessage(err)
		errs[govProposeField(msg)] = govCapitalize(msg)
	}
	s.renderGovList(w, r, sess, g, http.StatusBadRequest, f, errs)
}

// govSep is what joins another query parameter to a URL with query q.
func govSep(q string) string {
	if q == "" {
		return "?"
	}
	return "&"
}

// govCount is one choice's line of a tally.
type govCount struct {
	Choice string
	Count  uint64
	Share  string
	Winner bool
}

// govChoice is one choice's control of the ballot, with what was typed.
type govChoice struct {
	Index   int
	Name    string
	Checked bool
	Value   string // rank or credits
	Invalid bool
}

// govRound is one round of an instant-runoff tally, the counts in choice
// order.
type govRound struct {
	N      int
	Counts []uint64
}

type govProposalData struct {
	govScope
	P      api.ProposalView
	T      api.TallyView
	Back   string
	Self   string
	Starts govTime
	Ends   govTime
	Bars   template.HTML
	Counts []govCount
	// Turnout is the cast weight's share of the eligible weight.
	Turnout   string
	QuorumMet bool
	Rounds    []govRound
	Agree     int
	// ActionApplies says the proposal passed, for good, with its first
	// choice, so its action is part of the policy.
	ActionApplies bool
	Ballot        []govChoice
	Reason        string
	VoteErr       string
	Done          string
}

func (s *Server) govProposal(w http.ResponseWriter, r *http.Request, sess *session) {
	g, ok := s.govScope(w, r)
	if !ok {
		return
	}
	d, ok := s.govProposalData(w, r, g)
	if !ok {
		return
	}
	switch r.URL.Query().Get("done") {
	case "proposed":
		d.Done = "The proposal is published; the members' nodes receive it within seconds."
	case "voted":
		d.Done = "Your vote is published. You can vote again until the end: only your latest ballot counts."
	}
	s.render(w, http.StatusOK, "governance_proposal.html", page{Title: d.P.Title, Nav: "governance", CSRF: sess.csrf, Data: d})
}

// govProposalData gathers one proposal's page, or answers the client
// itself and returns false.
func (s *Server) govProposalData(w http.ResponseWriter, r *http.Request, g govScope) (govProposalData, bool) {
	ctx, id := r.Context(), r.PathValue("id")
	notFound := func(why string) {
		s.problem(w, http.StatusNotFound, "No such proposal",
			why+" The Governance page lists the proposals this node holds; a new one from another member may take a few seconds to arrive.")
	}
	t, err := s.cfg.Gov.Tally(ctx, g.Community.ID, id)
	if err != nil {
		if e, ok := errors.AsType[*api.Error](err); ok && e.Code >= 400 && e.Code < 500 {
			notFound(govCapitalize(e.Message))
			return govProposalData{}, false
		}
		s.problem(w, http.StatusInternalServerError, "The tally failed", govCapitalize(s.apiMessage(err)))
		return govProposalData{}, false
	}
	props, err := s.cfg.Gov.Proposals(ctx, g.Community.ID, "")
	if err != nil {
		s.problem(w, http.StatusInternalServerError, "The proposals could not be listed", govCapitalize(s.apiMessage(err)))
		return govProposalData{}, false
	}
	i := slices.IndexFunc(props, func(p api.ProposalView) bool { return p.ID == t.ID })
	if i < 0 {
		notFound(fmt.Sprintf("This node holds no proposal %s.", id))
		return govProposalData{}, false
	}
	p, now := props[i], s.cfg.Now()
	d := govProposalData{govScope: g, P: p, T: t, Back: "/governance" + g.Query, Self: g.proposalHref(p.ID), Starts: newGovTime(now, p.Start), Ends: newGovTime(now, p.Ends),
		Agree: max(0, t.Tallies-len(t.Disagreements))}
	base := govTallyBase(p.Method, t)
	d.Bars = govTallyBars(p.Choices, t.Counts, base, p.Threshold, t.Winner)
	for _, c := range p.Choices {
		d.Counts = append(d.Counts, govCount{Choice: c, Count: t.Counts[c], Share: govShare(t.Counts[c], base), Winner: c == t.Winner})
	}
	if t.Eligible > 0 {
		d.Turnout = fmt.Sprintf("%.1f%%", 100*t.Weight/t.Eligible)
	}
	d.ActionApplies = p.Action != "" && t.Final && t.Status == "passed" && len(p.Choices) > 0 && t.Winner == p.Choices[0]
	d.QuorumMet = t.Weight*1000 >= float64(p.Quorum)*t.Eligible
	for i, round := range t.Rounds {
		row := govRound{N: i + 1, Counts: make([]uint64, len(p.Choices))}
		for j, c := range p.Choices {
			row.Counts[j] = round[c]
		}
		d.Rounds = append(d.Rounds, row)
	}
	for j, c := range p.Choices {
		d.Ballot = append(d.Ballot, govChoice{Index: j, Name: c})
	}
	return d, true
}

func (s *Server) govVote(w http.ResponseWriter, r *http.Request, sess *session) {
	g, ok := s.govScope(w, r)
	if !ok {
		return
	}
	d, ok := s.govProposalData(w, r, g)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		s.problem(w, http.StatusBadRequest, "The form could not be read", "Reload the page and vote again.")
		return
	}
	req := api.VoteRequest{Community: g.Community.ID, Reason: govLines(r.PostFormValue("reason"))}
	d.Reason = req.Reason
	names := d.P.Choices
	var msg string
	var bad []int
	switch d.P.Method {
	case "approval", "single":
		picked := map[int]bool{}
		for _, v := range r.PostForm["choice"] {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n >= len(names) {
				msg = "That choice is not one of this proposal's; reload the page and vote again."
				break
			}
			picked[n] = true
		}
		for i := range d.Ballot {
			d.Ballot[i].Checked = picked[i]
			if picked[i] {
				req.Choices = append(req.Choices, names[i])
			}
		}
		if msg == "" && len(req.Choices) == 0 {
			msg = "Choose one of the choices."
			if d.P.Method == "approval" {
				msg = "Tick at least one choice you approve of."
			}
		}
	case "ranked":
		ranks := make([]string, len(names))
		for i := range names {
			ranks[i] = r.PostFormValue("rank-" + strconv.Itoa(i))
			d.Ballot[i].Value = ranks[i]
		}
		var order []int
		order, bad, msg = govRankedBallot(names, ranks)
		for _, i := range order {
			req.Choices = append(req.Choices, names[i])
		}
	case "quadratic":
		credits := make([]string, len(names))
		for i := range names {
			credits[i] = r.PostFormValue("credits-" + strconv.Itoa(i))
			d.Ballot[i].Value = credits[i]
		}
		var picked []int
		picked, req.Credits, bad, msg = govQuadraticBallot(names, credits)
		for _, i := range picked {
			req.Choices = append(req.Choices, names[i])
		}
	default:
		msg = fmt.Sprintf("This dashboard cannot fill a ballot for the voting method %q; vote with `agora vote`.", d.P.Method)
	}
	for _, i := range bad {
		d.Ballot[i].Invalid = true
	}
	if msg == "" {
		_, err := s.cfg.Gov.Vote(r.Context(), d.P.ID, req)
		if err == nil {
			http.Redirect(w, r, g.proposalHref(d.P.ID)+govSep(g.Query)+"done=voted", http.StatusSeeOther)
			return
		}
		msg = govCapitalize(s.apiMessage(err))
	}
	d.VoteErr = msg
	s.render(w, http.StatusBadRequest, "governance_proposal.html", page{Title: d.P.Title, Nav: "governance", CSRF: sess.csrf, Data: d})
}

// govRankedBallot turns the rank typed for each choice (1 = most preferred,
// blank = unranked) into the choices' indices in preference order. It
// refuses what is not a rank from 1 to the number of choices and a rank
// given twice, naming the choices at fault in bad.
func govRankedBallot(names, ranks []string) (order, bad []int, msg string) {
	byRank := map[int]int{} // rank → choice index
	for i, v := range ranks {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > len(names) {
			return nil, []int{i}, fmt.Sprintf("The rank of %q must be a whole number from 1 to %d, or blank to leave it unranked, not %q.", names[i], len(names), v)
		}
		if j, dup := byRank[n]; dup {
			return nil, []int{j, i}, fmt.Sprintf("%q and %q both have rank %d; give each choice its own rank, or leave it blank.", names[j], names[i], n)
		}
		byRank[n] = i
	}
	if len(byRank) == 0 {
		return nil, nil, "Rank at least one choice: 1 for your first preference, 2 for the next, and so on."
	}
	rs := make([]int, 0, len(byRank))
	for n := range byRank {
		rs = append(rs, n)
	}
	slices.Sort(rs)
	for _, n := range rs {
		order = append(order, byRank[n])
	}
	return order, nil, ""
}

// govQuadraticBallot reads the credits typed for each choice (blank or 0 =
// none) into the chosen indices and their credits, in choice order. The
// sum and the upper bounds are the API's to check; this only refuses what
// is not a whole number.
func govQuadraticBallot(names, credits []string) (picked []int, out []int64, bad []int, msg string) {
	for i, v := range credits {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, nil, []int{i}, fmt.Sprintf("The credits for %q must be a whole number of thousandths of your budget (0 to 1000), not %q.", names[i], v)
		}
		if n > 0 {
			picked, out = append(picked, i), append(out, n)
		}
	}
	if len(picked) == 0 {
		return nil, nil, nil, "Give some of your 1000 credits to at least one choice."
	}
	return picked, out, nil, ""
}

// govLines undoes the CRLF line ends browsers send a textarea with: record
// text takes plain newlines only.
func govLines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// govChoices splits the choices field: one per line, or separated by
// commas when it is a single line. Blank entries are dropped; the API
// checks the rest.
func govChoices(s string) []string {
	sepr := ","
	if strings.Contains(s, "\n") {
		sepr = "\n"
	}
	var out []string
	for c := range strings.SplitSeq(s, sepr) {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// govThousandths reads a share field: whole thousandths ("500") or a
// percentage with at most one decimal ("50%", "12.5%"); blank is nil (the
// policy's). The range is the API's to check.
func govThousandths(field, s string) (*int64, string) {
	if s == "" {
		return nil, ""
	}
	bad := fmt.Sprintf("Give the %s in thousandths (500) or as a percentage (50%%), not %q.", field, s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		whole, frac, _ := strings.Cut(strings.TrimSpace(pct), ".")
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || w < 0 || w > 100 || len(frac) > 1 || (frac != "" && (frac[0] < '0' || frac[0] > '9')) {
			return nil, bad
		}
		n := 10 * w
		if frac != "" {
			n += int64(frac[0] - '0')
		}
		return &n, ""
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, bad
	}
	return &n, ""
}

// govDuration reads the voting period: whole seconds ("600") or Go
// duration text ("90m", "48h"); blank is 0 (the policy's). The range is
// the API's to check.
func govDuration(s string) (int64, string) {
	if s == "" {
		return 0, ""
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Sprintf("The duration must be a positive number of seconds, not %q.", s)
		}
		return n, ""
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("Give the duration in seconds (600) or as a duration such as 90m or 48h, not %q.", s)
	case d <= 0:
		return 0, fmt.Sprintf("The duration must be positive, not %q.", s)
	case d%time.Second != 0:
		return 0, fmt.Sprintf("The duration is counted in whole seconds, not %q.", s)
	}
	return int64(d / time.Second), ""
}

// govProposeField is the form field an API error about a proposal belongs
// to, "form" when it is about none in particular. The API's sentences
// name what they refuse.
func govProposeField(msg string) string {
	m := strings.ToLower(msg)
	for _, f := range []struct{ word, field string }{
		{"the action", "action"}, // first: an action may name a policy key such as vote.quorum
		{"quorum", "quorum"},
		{"threshold", "threshold"},
		{"voting period", "duration"},
		{"duration", "duration"},
		{"title", "title"},
		{"proposal body", "body"},
		{"choice", "choices"},
		{"method", "method"},
		{"weighting", "weighting"},
	} {
		if strings.Contains(m, f.word) {
			return f.field
		}
	}
	return "form"
}

// govTallyBase is what a tally's shares are of, as the threshold counts them:
// the cast weight for single and approval, the last round's active weight
// for ranked, all the votes for quadratic.
func govTallyBase(method string, t api.TallyView) uint64 {
	switch method {
	case "ranked", "quadratic":
		var sum uint64
		for _, c := range t.Counts {
			sum += c
		}
		return sum
	}
	return uint64(t.Weight)
}

// govShare is n's share of base as a percentage with one decimal.
func govShare(n, base uint64) string {
	if base == 0 {
		return "0%"
	}
	p := min(n, base) * 1000 / base
	return fmt.Sprintf("%d.%d%%", p/10, p%10)
}

// Geometry of the tally bars, in the SVG's own units; the picture scales
// to its box.
const (
	barsWidth  = 400
	barsLabelH = 18
	barsBarH   = 12
	barsGap    = 8
	barsLabel  = 48 // runes of a choice shown in the picture; the table has all
)

// govTallyBars draws a tally as one bar per choice, its length the choice's
// govShare of base, with the threshold as a dashed line and the winner's bar
// marked. The colours come from governance.css, so the picture follows
// the light and dark themes.
func govTallyBars(choices []string, counts map[string]uint64, base uint64, threshold int64, winner string) template.HTML {
	row := barsLabelH + barsBarH + barsGap
	h := max(row*len(choices)-barsGap, 1)
	var b strings.Builder
	var summary []string
	for _, c := range choices {
		summary = append(summary, fmt.Sprintf("%s %s (%d)", c, govShare(counts[c], base), counts[c]))
	}
	label := "Tally: " + strings.Join(summary, ", ")
	if base == 0 {
		label = "Tally: no votes counted yet"
	}
	if threshold > 0 {
		label += fmt.Sprintf("; threshold %s", govShare(uint64(min(threshold, 1000)), 1000))
	}
	fmt.Fprintf(&b, `<svg class="gov-tally" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>`,
		barsWidth, h, html.EscapeString(label), html.EscapeString(label))
	for i, c := range choices {
		n := counts[c]
		var w uint64
		if base > 0 {
			w = min(n, base) * barsWidth / base
		}
		y := i * row
		cls := "gov-bar"
		if c == winner && winner != "" {
			cls = "gov-bar gov-win"
		}
		fmt.Fprintf(&b, `<text x="0" y="%d" class="gov-label">%s %s</text>`, y+barsLabelH-4, html.EscapeString(govClip(c, barsLabel)), govShare(n, base))
		fmt.Fprintf(&b, `<rect class="gov-track" x="0" y="%d" width="%d" height="%d"/>`, y+barsLabelH, barsWidth, barsBarH)
		fmt.Fprintf(&b, `<rect class="%s" x="0" y="%d" width="%d" height="%d" data-choice="%s" data-count="%d"/>`,
			cls, y+barsLabelH, w, barsBarH, html.EscapeString(c), n)
	}
	if threshold > 0 && threshold <= 1000 {
		x := threshold * barsWidth / 1000
		fmt.Fprintf(&b, `<line class="gov-thr" x1="%d" x2="%d" y1="0" y2="%d"/>`, x, x, h)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func govClip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// govRelTime says when ms is from now, roughly: "in 5 s", "3 min ago".
func govRelTime(now time.Time, ms int64) string {
	d := time.UnixMilli(ms).Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		s = fmt.Sprintf("%d s", d/time.Second)
	case d < time.Hour:
		s = fmt.Sprintf("%d min", d/time.Minute)
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", d/time.Hour)
	default:
		s = fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

// govCapitalize starts an API sentence with a capital, for a page's text.
func govCapitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return strings.ToUpper(string(r)) + s[n:]
}
