package ui

// The Community page: who offers which skill (searchable on the server), the
// communities this node is in with their invites, a form to join another,
// and two pictures: the providers' latencies and who delegates to whom.

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

func init() {
	addNav(20, "community", "Community", "/community")
	addRoute("GET /community", (*Server).communityPage)
	addRoute("POST /community/join", (*Server).communityJoin)
	addStyle("community.css")
}

// filledForm is a submitted form shown again: what was typed and, per
// field, the API's sentence about it. The key "" is the form as a whole.
type filledForm struct {
	Values url.Values
	Errors map[string]string
}

func (f filledForm) Err(field string) string { return f.Errors[field] }
func (f filledForm) Val(field string) string { return f.Values.Get(field) }

// ctCommunity is the community a page shows: the one named by the
// query's "community", or the node's first. ok is false (and a 404 page
// written) for an ID the node is not in.
func (s *Server) ctCommunity(w http.ResponseWriter, r *http.Request, id string) (all []api.Community, cur api.Community, ok bool) {
	all = s.cfg.Backend.Communities(r.Context())
	if id == "" {
		if len(all) > 0 {
			cur = all[0]
		}
		return all, cur, true
	}
	for _, c := range all {
		if c.ID == id {
			return all, c, true
		}
	}
	s.problem(w, http.StatusNotFound, "This node is not in that community",
		fmt.Sprintf("The node is in no community with the ID %q. Open the Community page from the navigation to see the communities it is in, or join this one with its invite.", id))
	return all, cur, false
}

type communityProvider struct {
	Peer, Agent     string
	Self, Certified bool
	Trust, Latency  string
	Success, Load   string
}

type communitySkill struct {
	Skill, Description string
	Providers          []communityProvider
}

type communityInvite struct {
	api.Community
	Invite    string
	InviteErr string
}

type communityData struct {
	Communities []communityInvite
	Current     api.Community
	Q, Skill    string
	Certified   bool
	SkillIDs    []string
	Skills      []communitySkill
	SkillsErr   string
	Offers      int // provider entries before filtering

	Latency     template.HTML
	Unmeasured  int
	Graph       template.HTML
	Edges       []delegationEdge
	GraphErr    string
	GraphRecent int
	Self        string
	Join        filledForm
}

// delegationRecords bounds the feedback records the delegation graph reads.
const delegationRecords = 1000

func (s *Server) communityPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.renderCommunity(w, r, sess, http.StatusOK, filledForm{})
}

func (s *Server) renderCommunity(w http.ResponseWriter, r *http.Request, sess *session, status int, join filledForm) {
	ctx := r.Context()
	q := r.URL.Query()
	all, cur, ok := s.ctCommunity(w, r, q.Get("community"))
	if !ok {
		return
	}
	d := communityData{Current: cur, Q: strings.TrimSpace(q.Get("q")), Skill: strings.TrimSpace(q.Get("skill")),
		Certified: q.Get("certified") == "1", Self: s.cfg.Backend.Identity().PeerID, Join: join}
	for _, c := range all {
		ci := communityInvite{Community: c}
		if inv, err := s.cfg.Backend.Invite(ctx, c.ID); err != nil {
			ci.InviteErr = s.apiMessage(err)
		} else {
			ci.Invite = inv.Invite
		}
		d.Communities = append(d.Communities, ci)
	}

	if s.cfg.Work == nil {
		d.SkillsErr = "This node does not run agents, so it does not know who offers which skill."
	} else if cur.ID != "" {
		offers, err := s.cfg.Work.Skills(ctx, cur.ID, "")
		if err != nil {
			d.SkillsErr = s.apiMessage(err)
		}
		var latencies []float64
		for _, o := range offers {
			d.SkillIDs = append(d.SkillIDs, o.Skill)
			row := communitySkill{Skill: o.Skill, Description: o.Description}
			for _, p := range o.Providers {
				d.Offers++
				pr := communityProviderView(p)
				if !p.Self {
					if p.LatencyMS > 0 {
						latencies = append(latencies, p.LatencyMS)
					} else {
						d.Unmeasured++
					}
				}
				row.Providers = append(row.Providers, pr)
			}
			if row = communityFilter(row, d.Q, d.Skill, d.Certified); len(row.Providers) > 0 {
				d.Skills = append(d.Skills, row)
			}
		}
		slices.Sort(d.SkillIDs)
		if d.Skill != "" && !slices.Contains(d.SkillIDs, d.Skill) {
			d.SkillIDs = append(d.SkillIDs, d.Skill) // the search shows what it searched for
		}
		d.Latency = communityLatencyChart(latencies).SVG()
	}

	if cur.ID != "" {
		recs, err := s.cfg.Backend.Records(ctx, api.RecordQuery{Community: cur.ID, Kind: "feedback", Limit: delegationRecords})
		if err != nil {
			d.GraphErr = s.apiMessage(err)
		} else {
			d.GraphRecent = len(recs)
			d.Edges = delegationEdges(recs)
			d.Graph = delegationGraph(d.Self, d.Edges)
		}
	}
	s.render(w, status, "community.html", page{Title: "Community", Nav: "community", CSRF: sess.csrf, Data: d})
}

func communityProviderView(p api.Provider) communityProvider {
	pr := communityProvider{Peer: p.PeerID, Agent: p.Agent, Self: p.Self, Certified: p.Certified,
		Trust:   fmt.Sprintf("%d/1000", p.Trust),
		Success: fmt.Sprintf("%.0f%%", 100*p.SuccessRate), Load: fmt.Sprintf("%.0f%%", 100*p.Load),
		Latency: "not measured"}
	if p.Self {
		pr.Trust = "this node"
	}
	switch {
	case p.LatencyMS >= 10:
		pr.Latency = fmt.Sprintf("%.0f ms", p.LatencyMS)
	case p.LatencyMS > 0:
		pr.Latency = fmt.Sprintf("%.1f ms", p.LatencyMS)
	}
	return pr
}

// communityFilter keeps the providers of a skill that the search asks for: q
// matches, without regard to case, the skill's ID or description (then every
// provider stays) or a provider's peer ID or agent; skill, when set, must be
// the skill's exact ID; certified keeps certified providers only.
func communityFilter(row communitySkill, q, skill string, certified bool) communitySkill {
	if skill != "" && row.Skill != skill {
		row.Providers = nil
		return row
	}
	q = strings.ToLower(q)
	whole := q == "" || strings.Contains(strings.ToLower(row.Skill), q) || strings.Contains(strings.ToLower(row.Description), q)
	row.Providers = slices.DeleteFunc(slices.Clone(row.Providers), func(p communityProvider) bool {
		if certified && !p.Certified {
			return true
		}
		return !whole && !strings.Contains(strings.ToLower(p.Peer), q) && !strings.Contains(strings.ToLower(p.Agent), q)
	})
	return row
}

// communityLatencyChart bins the measured latencies into five ranges up to a round
// number.
func communityLatencyChart(ms []float64) svgBarChart {
	c := svgBarChart{Title: "Latency of providers (average round trip of their tasks)", Unit: "providers", Axis: "milliseconds"}
	if len(ms) == 0 {
		return c
	}
	hi := svgNiceCeil(slices.Max(ms))
	c.Bars = svgBin(ms, 0, hi, 5, func(lo, hi float64) string { return svgNumber(lo) + "–" + svgNumber(hi) })
	return c
}

func (s *Server) communityJoin(w http.ResponseWriter, r *http.Request, sess *session) {
	invite := strings.TrimSpace(r.PostFormValue("invite"))
	j, err := s.cfg.Backend.JoinCommunity(r.Context(), invite)
	if err != nil {
		f := filledForm{Values: r.PostForm, Errors: map[string]string{"invite": s.apiMessage(err)}}
		if invite == "" {
			f.Errors["invite"] = "Paste the invite you were given (it starts with agora-invite:)."
		}
		r.URL.RawQuery = ""
		s.renderCommunity(w, r, sess, formErrorStatus(err), f)
		return
	}
	http.Redirect(w, r, "/community?community="+url.QueryEscape(j.ID), http.StatusSeeOther)
}

// formErrorStatus is the HTTP status of a form answered with err: the API's own
// when it has one.
func formErrorStatus(err error) int {
	if e, ok := errors.AsType[*api.Error](err); ok && e.Code >= 400 {
		return e.Code
	}
	return http.StatusInternalServerError
}

// delegationEdge is one requester → executor pair with the number of
// distinct receipts (tasks) the community's feedback records show.
type delegationEdge struct {
	From, To string
	Tasks    int
	Last     time.Time
}

// delegationEdges reads the feedback records' receipts. A hand rating
// supersedes the automatic one on the same receipt, so tasks are counted by
// receipt, not by record. Self-delegation (impossible for feedback) and
// records without a receipt are skipped.
func delegationEdges(recs []api.RecordView) []delegationEdge {
	type pair struct{ from, to string }
	seen := map[string]bool{}
	idx := map[pair]int{}
	var out []delegationEdge
	for _, rec := range recs {
		if rec.Kind != "feedback" {
			continue
		}
		rc, _ := rec.Body["receipt"].(map[string]any)
		from, _ := rc["requester"].(string)
		to, _ := rc["executor"].(string)
		id, _ := rc["cid"].(string)
		if from == "" || to == "" || from == to {
			continue
		}
		if id == "" {
			id = rec.CID
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		k := pair{from, to}
		i, ok := idx[k]
		if !ok {
			i, idx[k] = len(out), len(out)
			out = append(out, delegationEdge{From: from, To: to})
		}
		out[i].Tasks++
		if t := time.UnixMilli(rec.Created); t.After(out[i].Last) {
			out[i].Last = t
		}
	}
	slices.SortFunc(out, func(a, b delegationEdge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return out
}

// The delegation graph's geometry, in viewBox units.
const (
	dgCX, dgCY   = 170, 155
	dgRadius     = 110
	dgNodeRadius = 16
	dgLabelHalf  = 44 // half the width of a node's label
)

// delegationGraph draws the peers of the edges on a circle (self first, at
// the top) with an arrow per edge, thicker for more tasks. Each edge is
// offset to its right so that a → b and b → a stay apart. Empty edges give
// nothing.
func delegationGraph(self string, edges []delegationEdge) template.HTML {
	if len(edges) == 0 {
		return ""
	}
	var peers []string
	have := map[string]bool{}
	for _, e := range edges {
		for _, p := range []string{e.From, e.To} {
			if !have[p] {
				have[p] = true
				peers = append(peers, p)
			}
		}
	}
	slices.SortFunc(peers, func(a, b string) int {
		if (a == self) != (b == self) {
			if a == self {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	type pt struct{ x, y float64 }
	pos := map[string]pt{}
	for i, p := range peers {
		if len(peers) == 1 {
			pos[p] = pt{dgCX, dgCY}
			break
		}
		a := 2*math.Pi*float64(i)/float64(len(peers)) - math.Pi/2
		pos[p] = pt{dgCX + dgRadius*math.Cos(a), dgCY + dgRadius*math.Sin(a)}
	}
	name := func(p string) string {
		if p == self {
			return "this node"
		}
		return "…" + p[max(0, len(p)-6):]
	}

	esc := template.HTMLEscapeString
	var sb, label strings.Builder
	label.WriteString("Who delegates to whom, from the feedback records: ")
	for i, e := range edges {
		if i > 0 {
			label.WriteString("; ")
		}
		fmt.Fprintf(&label, "%s to %s, %d %s", name(e.From), name(e.To), e.Tasks, communityPlural(e.Tasks, "task", "tasks"))
	}
	// The viewBox fits the nodes and their labels, not the whole circle:
	// three nodes leave its bottom empty.
	left, top, right, bottom := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, c := range pos {
		left, top, right, bottom = math.Min(left, c.x), math.Min(top, c.y), math.Max(right, c.x), math.Max(bottom, c.y)
	}
	left, top = left-dgLabelHalf, top-dgNodeRadius-4
	right, bottom = right+dgLabelHalf, bottom+dgNodeRadius+20
	fmt.Fprintf(&sb, `<svg id="delegations" class="graph" viewBox="%.0f %.0f %.0f %.0f" role="img" aria-label="%s">`,
		left, top, right-left, bottom-top, esc(label.String()+"."))
	sb.WriteString(`<title>Who delegates to whom</title>`)
	sb.WriteString(`<defs><marker id="delegation-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path class="graph-arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>`)
	for _, e := range edges {
		a, b := pos[e.From], pos[e.To]
		dx, dy := b.x-a.x, b.y-a.y
		n := math.Hypot(dx, dy)
		if n == 0 {
			continue
		}
		ux, uy := dx/n, dy/n
		ox, oy := -uy*4, ux*4 // to the right of the direction of travel
		x1, y1 := a.x+ux*(dgNodeRadius+2)+ox, a.y+uy*(dgNodeRadius+2)+oy
		x2, y2 := b.x-ux*(dgNodeRadius+3)+ox, b.y-uy*(dgNodeRadius+3)+oy
		width := 1.5 + 0.5*float64(min(e.Tasks-1, 8))
		text := fmt.Sprintf("%s delegated %d %s to %s", e.From, e.Tasks, communityPlural(e.Tasks, "task", "tasks"), e.To)
		fmt.Fprintf(&sb, `<g class="graph-edge" data-from="%s" data-to="%s" data-tasks="%d" aria-label="%s"><title>%s</title>`,
			esc(e.From), esc(e.To), e.Tasks, esc(text), esc(text))
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke-width="%.1f" marker-end="url(#delegation-arrow)"/></g>`, x1, y1, x2, y2, width)
	}
	for _, p := range peers {
		c := pos[p]
		class := "graph-node"
		if p == self {
			class += " graph-self"
		}
		fmt.Fprintf(&sb, `<g class="%s" data-peer="%s"><title>%s</title>`, class, esc(p), esc(p))
		fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="%d"/>`, c.x, c.y, dgNodeRadius)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text></g>`, c.x, c.y+dgNodeRadius+14, esc(name(p)))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func communityPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
