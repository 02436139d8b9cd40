package ui

// The Trust page: personal and community reputation with the distribution
// of trust levels, the peers the owner trusts (add, remove), attestations
// (publish one, revoke this node's own) and the community's certifications.

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

func init() {
	addNav(40, "trust", "Trust", "/trust")
	addRoute("GET /trust", (*Server).trustPage)
	addRoute("POST /trust/peers", (*Server).trustAddPeer)
	addRoute("POST /trust/peers/remove", (*Server).trustRemovePeer)
	addRoute("POST /trust/attest", (*Server).trustAttest)
	addRoute("POST /trust/revoke", (*Server).trustRevoke)
	addStyle("trust.css")
}

// What an attestation form offers; the protocol's lists (protocol/body).
var (
	trustSubjectTypes = []string{"peer", "agent", "skill", "code", "receipt", "record"}
	trustVerdicts     = []string{"pass", "fail", "warn"}
)

// trustAttestations bounds the attestations listed.
const trustAttestations = 200

type trustRepRow struct {
	api.RepEntry
	Share   string // of the community's trust, in percent
	Self    bool
	Trusted bool // among the peers the owner trusts
}

type trustRep struct {
	Kind, Title string
	Rows        []trustRepRow
	Err         string
	Chart       template.HTML
}

type trustAttRow struct {
	CID, Subject, Predicate, Verdict, Author, Evidence string
	Created                                            time.Time
	Own, Revoked                                       bool
}

type trustPeerRow struct {
	PeerID string
	Added  time.Time
}

type trustData struct {
	Communities  []api.Community
	Current      api.Community
	Self         string
	Reputation   []trustRep
	Trusted      []trustPeerRow
	TrustedErr   string
	Attestations []trustAttRow
	AttErr       string
	Certs        []api.Certification
	CertsErr     string
	SubjectTypes []string
	Verdicts     []string
	Form         filledForm
}

func (s *Server) trustPage(w http.ResponseWriter, r *http.Request, sess *session) {
	s.renderTrust(w, r, sess, http.StatusOK, r.URL.Query().Get("community"), filledForm{})
}

// renderTrust draws the page for community id ("" for the first), with
// form f shown again when it failed.
func (s *Server) renderTrust(w http.ResponseWriter, r *http.Request, sess *session, status int, id string, f filledForm) {
	ctx := r.Context()
	all, cur, ok := s.ctCommunity(w, r, id)
	if !ok {
		return
	}
	d := trustData{Communities: all, Current: cur, Self: s.cfg.Backend.Identity().PeerID,
		SubjectTypes: trustSubjectTypes, Verdicts: trustVerdicts, Form: f}
	trusted := map[string]bool{}
	if s.cfg.Trust == nil {
		d.TrustedErr = "This node does not compute reputation."
	} else {
		ps, err := s.cfg.Trust.TrustedPeers(ctx)
		if err != nil {
			d.TrustedErr = s.apiMessage(err)
		}
		for _, p := range ps {
			d.Trusted = append(d.Trusted, trustPeerRow{PeerID: p.PeerID, Added: time.UnixMilli(p.Added)})
			trusted[p.PeerID] = true
		}
	}
	if cur.ID != "" && s.cfg.Trust != nil {
		for _, kind := range []string{"personal", "community"} {
			rep := trustRep{Kind: kind, Title: "Personal reputation"}
			if kind == "community" {
				rep.Title = "Community reputation"
			}
			es, err := s.cfg.Trust.Reputation(ctx, cur.ID, kind, "")
			if err != nil {
				rep.Err = s.apiMessage(err)
			}
			levels := make([]float64, 0, len(es))
			for _, e := range es {
				rep.Rows = append(rep.Rows, trustRepRow{RepEntry: e, Share: fmt.Sprintf("%.1f%%", 100*e.Trust),
					Self: e.PeerID == d.Self, Trusted: trusted[e.PeerID]})
				levels = append(levels, float64(e.Level))
			}
			rep.Chart = trustLevelChart(rep.Title, levels).SVG()
			d.Reputation = append(d.Reputation, rep)
		}
		certs, err := s.cfg.Trust.Certifications(ctx, cur.ID, "")
		if err != nil {
			d.CertsErr = s.apiMessage(err)
		}
		d.Certs = certs
	}
	if cur.ID != "" {
		recs, err := s.cfg.Backend.Records(ctx, api.RecordQuery{Community: cur.ID, Kind: "attestation", Limit: trustAttestations})
		if err != nil {
			d.AttErr = s.apiMessage(err)
		}
		for _, rec := range recs {
			d.Attestations = append(d.Attestations, trustAttestation(rec, d.Self))
		}
	}
	s.render(w, status, "trust.html", page{Title: "Trust", Nav: "trust", CSRF: sess.csrf, Data: d})
}

// trustLevelChart counts peers by trust level (thousandths of the most
// trusted peer's) in five bands.
func trustLevelChart(title string, levels []float64) svgBarChart {
	c := svgBarChart{Title: title + ": peers by trust level (thousandths of the most trusted)", Unit: "peers", Axis: "trust level (‰)"}
	if len(levels) > 0 {
		c.Bars = svgBin(levels, 0, 1000, 5, func(lo, hi float64) string { return svgNumber(lo) + "–" + svgNumber(hi) })
	}
	return c
}

// trustAttestation reads an attestation record's body (node/records.go
// attestationJSON) for the table.
func trustAttestation(rec api.RecordView, self string) trustAttRow {
	row := trustAttRow{CID: rec.CID, Author: rec.Author, Created: time.UnixMilli(rec.Created), Revoked: rec.Revoked,
		Own: rec.Author == self}
	sub, _ := rec.Body["subject"].(map[string]any)
	typ, _ := sub["type"].(string)
	id, _ := sub["id"].(string)
	row.Subject = typ + ":" + id
	row.Predicate, _ = rec.Body["predicate"].(string)
	row.Verdict, _ = rec.Body["verdict"].(string)
	row.Evidence, _ = rec.Body["evidence"].(string)
	return row
}

// trustBack redirects to the page of the community the form was on.
func trustBack(w http.ResponseWriter, r *http.Request, community, anchor string) {
	u := "/trust"
	if community != "" {
		u += "?community=" + url.QueryEscape(community)
	}
	http.Redirect(w, r, u+anchor, http.StatusSeeOther)
}

func (s *Server) trustFailed(w http.ResponseWriter, r *http.Request, sess *session, err error, field string) {
	msg := s.apiMessage(err)
	s.renderTrust(w, r, sess, formErrorStatus(err), r.PostFormValue("community"),
		filledForm{Values: r.PostForm, Errors: map[string]string{field: msg}})
}

func (s *Server) trustAddPeer(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.cfg.Trust == nil {
		s.problem(w, http.StatusServiceUnavailable, "No reputation here", "This node does not compute reputation.")
		return
	}
	peer := strings.TrimSpace(r.PostFormValue("peer"))
	if peer == "" {
		s.renderTrust(w, r, sess, http.StatusBadRequest, r.PostFormValue("community"), filledForm{Values: r.PostForm,
			Errors: map[string]string{"peer": "Paste the ID of the peer to trust (it starts with 12D3Koo)."}})
		return
	}
	if _, err := s.cfg.Trust.AddTrustedPeer(r.Context(), peer); err != nil {
		s.trustFailed(w, r, sess, err, "peer")
		return
	}
	trustBack(w, r, r.PostFormValue("community"), "#trusted-h")
}

func (s *Server) trustRemovePeer(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.cfg.Trust == nil {
		s.problem(w, http.StatusServiceUnavailable, "No reputation here", "This node does not compute reputation.")
		return
	}
	err := s.cfg.Trust.RemoveTrustedPeer(r.Context(), r.PostFormValue("peer"))
	if e, ok := errors.AsType[*api.Error](err); ok && e.Code == http.StatusNotFound {
		s.problem(w, http.StatusNotFound, "Not a trusted peer", e.Message+" Reload the Trust page to see the peers this node trusts.")
		return
	}
	if err != nil {
		s.trustFailed(w, r, sess, err, "remove")
		return
	}
	trustBack(w, r, r.PostFormValue("community"), "#trusted-h")
}

func (s *Server) trustAttest(w http.ResponseWriter, r *http.Request, sess *session) {
	f := r.PostFormValue
	body := map[string]any{
		"subject":   map[string]any{"type": f("subject_type"), "id": strings.TrimSpace(f("subject_id"))},
		"predicate": strings.TrimSpace(f("predicate")),
		"verdict":   f("verdict"),
	}
	if ev := strings.TrimSpace(strings.ReplaceAll(f("evidence"), "\r\n", "\n")); ev != "" {
		body["evidence"] = ev
	}
	_, err := s.cfg.Backend.Publish(r.Context(), api.PublishRequest{Community: f("community"), Kind: "attestation", Body: body})
	if err != nil {
		s.trustFailed(w, r, sess, err, trustAttestField(s.apiMessage(err)))
		return
	}
	trustBack(w, r, f("community"), "#att-h")
}

// trustAttestField picks the attest form's field an API sentence is about; ""
// puts it above the form.
func trustAttestField(msg string) string {
	m := strings.ToLower(msg)
	for _, k := range []struct{ word, field string }{
		{"subject type", "subject_type"}, {"verdict", "verdict"}, {"predicate", "predicate"},
		{"evidence", "evidence"}, {"subject", "subject_id"},
	} {
		if strings.Contains(m, k.word) {
			return k.field
		}
	}
	return ""
}

func (s *Server) trustRevoke(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	target := strings.TrimSpace(r.PostFormValue("cid"))
	rec, err := s.cfg.Backend.Record(ctx, target)
	if err != nil {
		if e, ok := errors.AsType[*api.Error](err); ok && (e.Code == http.StatusNotFound || e.Code == http.StatusBadRequest) {
			s.problem(w, http.StatusNotFound, "No such record",
				e.Message+" Go back to the Trust page and reload it: the attestations listed there are the ones this node holds.")
			return
		}
		s.trustFailed(w, r, sess, err, "revoke")
		return
	}
	_, err = s.cfg.Backend.Publish(ctx, api.PublishRequest{Community: rec.Community, Kind: "revocation", Body: map[string]any{"target": rec.CID}})
	if err != nil {
		s.trustFailed(w, r, sess, err, "revoke")
		return
	}
	trustBack(w, r, r.PostFormValue("community"), "#att-h")
}
