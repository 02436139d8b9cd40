package api

import (
	"context"
	"net/http"
	"net/url"
)

// ProposeRequest is the body of POST /api/v1/proposals. Zero values take
// the community policy's defaults.
type ProposeRequest struct {
	Community string   `json:"community,omitempty"`
	Title     string   `json:"title"`
	Body      string   `json:"body,omitempty"`
	Choices   []string `json:"choices"`
	Method    string   `json:"method,omitempty"`    // single (default) | approval | ranked | quadratic
	Weighting string   `json:"weighting,omitempty"` // member (default) | trust
	// Quorum and Threshold are thousandths; nil takes the policy's.
	Quorum    *int64 `json:"quorum,omitempty"`
	Threshold *int64 `json:"threshold,omitempty"`
	// DurationS is the voting period (default the policy's); StartMS the
	// opening time (default now).
	DurationS int64 `json:"duration_s,omitempty"`
	StartMS   int64 `json:"start,omitempty"`
	// Action applies when the first choice wins, in the CLI's syntax:
	// "set-policy KEY=VALUE", "ban PEER", "unban PEER", "add-founder PEER",
	// "remove-founder PEER", "adopt-charter CID", "certify TYPE:ID",
	// "decertify TYPE:ID".
	Action string `json:"action,omitempty"`
}

// Proposed answers POST /api/v1/proposals.
type Proposed struct {
	ID string `json:"id"`
}

// ProposalView is one proposal, GET /api/v1/proposals.
type ProposalView struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Status    string   `json:"status"` // pending | open | passed | rejected | no-quorum | invalid
	Ends      int64    `json:"ends"`   // unix ms
	Votes     int      `json:"votes"`  // ballots counted so far
	Start     int64    `json:"start"`
	Proposer  string   `json:"proposer"`
	Method    string   `json:"method"`
	Weighting string   `json:"weighting"`
	Quorum    int64    `json:"quorum"`
	Threshold int64    `json:"threshold"`
	Choices   []string `json:"choices"`
	Action    string   `json:"action,omitempty"`
	Body      string   `json:"body,omitempty"`
	// Final says the grace period after the end has passed: the result
	// stands and its action applies.
	Final  bool   `json:"final"`
	Reason string `json:"reason,omitempty"` // why invalid
}

// VoteRequest is the body of POST /api/v1/proposals/{id}/votes.
type VoteRequest struct {
	Community string `json:"community,omitempty"`
	// Choices by name or by index ("0", "1", ...), in preference order for
	// ranked ballots.
	Choices []string `json:"choices"`
	// Credits, for quadratic ballots: thousandths of the voter's budget per
	// choice, in the same order.
	Credits []int64 `json:"credits,omitempty"`
	Reason  string  `json:"reason,omitempty"`
}

// Voted answers a vote.
type Voted struct {
	CID string `json:"cid"`
}

// TallyView is GET /api/v1/proposals/{id}/tally.
type TallyView struct {
	ID     string            `json:"id"`
	Status string            `json:"status"`
	Counts map[string]uint64 `json:"counts"` // choice → weight (units: 1000 per member, or millionths of community trust)
	Winner string            `json:"winner,omitempty"`
	Voters int               `json:"voters"`
	// Weight is the cast weight and Eligible all voters' weight, in the
	// same units as Counts.
	Weight      float64 `json:"weight"`
	Eligible    float64 `json:"eligible"`
	Fingerprint string  `json:"fingerprint"`
	Final       bool    `json:"final"`
	// Rounds are a ranked tally's rounds, choice → weight.
	Rounds        []map[string]uint64 `json:"rounds,omitempty"`
	Disagreements []Disagreement      `json:"disagreements"`
	// Tallies counts the members' published tallies, agreeing ones included.
	Tallies int `json:"tallies"`
}

// Disagreement is a member's published tally that differs from this
// node's.
type Disagreement struct {
	PeerID      string `json:"peer_id"`
	Fingerprint string `json:"fingerprint"`
	Status      string `json:"status"`
	Voters      uint64 `json:"voters"`
}

// PolicyView is GET /api/v1/policy: a community's policy as governance
// derived it.
type PolicyView struct {
	Community string           `json:"community"`
	Keys      []PolicyKeyValue `json:"keys"`
	Founders  []string         `json:"founders"`
	Banned    []SetBy          `json:"banned"`
	Charter   *SetBy           `json:"charter,omitempty"`
	Certified []SetBy          `json:"certified"`
	// Skipped lists passed actions that could not apply, with why.
	Skipped []string `json:"skipped,omitempty"`
}

// PolicyKeyValue is one policy key.
type PolicyKeyValue struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
	// SetBy is the proposal that set it; "" when it comes from the genesis.
	SetBy string `json:"set_by"`
	Help  string `json:"help"`
}

// SetBy names something governance decided and the proposal that did.
type SetBy struct {
	ID    string `json:"id"`
	SetBy string `json:"set_by"`
}

// Governance is proposals, votes, tallies and the derived policy as the
// API sees them. Optional in ServerConfig (503 without it).
type Governance interface {
	Propose(ctx context.Context, req ProposeRequest) (Proposed, error)
	Proposals(ctx context.Context, community, status string) ([]ProposalView, error)
	Vote(ctx context.Context, proposal string, req VoteRequest) (Voted, error)
	Tally(ctx context.Context, community, proposal string) (TallyView, error)
	Policy(ctx context.Context, community string) (PolicyView, error)
}

func (s *Server) routeGovernance(m *http.ServeMux) {
	m.HandleFunc("POST /api/v1/proposals", s.withGov(s.propose))
	m.HandleFunc("GET /api/v1/proposals", s.withGov(s.proposals))
	m.HandleFunc("POST /api/v1/proposals/{id}/votes", s.withGov(s.vote))
	m.HandleFunc("GET /api/v1/proposals/{id}/tally", s.withGov(s.tally))
	m.HandleFunc("GET /api/v1/policy", s.withGov(s.policy))
}

func (s *Server) withGov(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.gov == nil {
			writeError(w, http.StatusServiceUnavailable, "this node does not take part in governance.")
			return
		}
		h(w, r)
	}
}

func (s *Server) propose(w http.ResponseWriter, r *http.Request) {
	var req ProposeRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Title == "" || len(req.Choices) < 2 {
		writeError(w, http.StatusBadRequest, "a proposal needs a \"title\" and at least two \"choices\".")
		return
	}
	if req.DurationS < 0 || req.StartMS < 0 {
		writeError(w, http.StatusBadRequest, "\"duration_s\" and \"start\" must not be negative.")
		return
	}
	out, err := s.gov.Propose(r.Context(), req)
	if err != nil {
		s.backendError(w, r, "publish the proposal", err)
		return
	}
	w.Header().Set("Location", "/api/v1/proposals/"+url.PathEscape(out.ID)+"/tally")
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) proposals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out, err := s.gov.Proposals(r.Context(), q.Get("community"), q.Get("status"))
	if err != nil {
		s.backendError(w, r, "list the proposals", err)
		return
	}
	out = nonNil(out)
	for i := range out {
		out[i].Choices = nonNil(out[i].Choices)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) vote(w http.ResponseWriter, r *http.Request) {
	var req VoteRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if len(req.Choices) == 0 {
		writeError(w, http.StatusBadRequest, "name at least one choice in \"choices\".")
		return
	}
	out, err := s.gov.Vote(r.Context(), r.PathValue("id"), req)
	if err != nil {
		s.backendError(w, r, "vote", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) tally(w http.ResponseWriter, r *http.Request) {
	out, err := s.gov.Tally(r.Context(), r.URL.Query().Get("community"), r.PathValue("id"))
	if err != nil {
		s.backendError(w, r, "tally the proposal", err)
		return
	}
	if out.Counts == nil {
		out.Counts = map[string]uint64{}
	}
	out.Disagreements = nonNil(out.Disagreements)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) policy(w http.ResponseWriter, r *http.Request) {
	out, err := s.gov.Policy(r.Context(), r.URL.Query().Get("community"))
	if err != nil {
		s.backendError(w, r, "derive the policy", err)
		return
	}
	out.Keys, out.Founders, out.Banned, out.Certified = nonNil(out.Keys), nonNil(out.Founders), nonNil(out.Banned), nonNil(out.Certified)
	writeJSON(w, http.StatusOK, out)
}
