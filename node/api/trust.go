package api

import (
	"context"
	"net/http"
)

// RepEntry is one peer's reputation, GET /api/v1/reputation.
type RepEntry struct {
	PeerID string `json:"peer_id"`
	// Trust is the peer's share of the community's trust (the EigenTrust
	// vector sums to 1); Level is the same relative to the most trusted
	// peer, in thousandths, which is what policy thresholds compare.
	Trust    float64 `json:"trust"`
	Level    int64   `json:"level"`
	Rank     int     `json:"rank"`
	Feedback int     `json:"feedback"` // ratings received that count
	// Blame is the trust-weighted share of negative evidence about the
	// peer; Distrusted says it outweighs the peer's trust, which ranks the
	// peer out and scores it down in gossip.
	Blame      float64 `json:"blame"`
	Distrusted bool    `json:"distrusted,omitempty"`
	// Seed says the peer is a pre-trusted seed of this vector.
	Seed bool `json:"seed,omitempty"`
}

// Certification is one subject's certification, GET /api/v1/certifications.
type Certification struct {
	Subject      string   `json:"subject"`
	Certified    bool     `json:"certified"`
	Attestations int      `json:"attestations"`
	Reasons      []string `json:"reasons"`
}

// TrustedPeer is a peer the owner trusts: a seed of this node's personal
// trust.
type TrustedPeer struct {
	PeerID string `json:"peer_id"`
	Added  int64  `json:"added"` // unix ms
}

// TrustPeerRequest is the body of POST /api/v1/trust/peers.
type TrustPeerRequest struct {
	PeerID string `json:"peer_id"`
}

// RateRequest is the body of POST /api/v1/tasks/{id}/rate.
type RateRequest struct {
	Score   int64  `json:"score"` // 0..1000
	Comment string `json:"comment,omitempty"`
}

// Rated is the feedback record a rating made.
type Rated struct {
	CID      string `json:"cid"`
	Task     string `json:"task_id"`
	Executor string `json:"executor"`
	Score    int64  `json:"score"`
}

// Trust is the node's reputation, certification and feedback as the API
// sees them. Optional in ServerConfig (503 without it).
type Trust interface {
	// Reputation lists peers by trust: kind is "personal" (default) or
	// "community"; peer, when set, keeps only that peer.
	Reputation(ctx context.Context, community, kind, peer string) ([]RepEntry, error)
	// Certifications decides every attested subject, or only subject.
	Certifications(ctx context.Context, community, subject string) ([]Certification, error)
	TrustedPeers(ctx context.Context) ([]TrustedPeer, error)
	AddTrustedPeer(ctx context.Context, peer string) (TrustedPeer, error)
	RemoveTrustedPeer(ctx context.Context, peer string) error
	// Rate files (or supersedes) the feedback on a task this node asked
	// another member to run.
	Rate(ctx context.Context, task string, req RateRequest) (Rated, error)
}

func (s *Server) routeTrust(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/reputation", s.withTrust(s.reputation))
	m.HandleFunc("GET /api/v1/certifications", s.withTrust(s.certifications))
	m.HandleFunc("GET /api/v1/trust/peers", s.withTrust(s.trustedPeers))
	m.HandleFunc("POST /api/v1/trust/peers", s.withTrust(s.addTrustedPeer))
	m.HandleFunc("DELETE /api/v1/trust/peers/{peer}", s.withTrust(s.removeTrustedPeer))
	m.HandleFunc("POST /api/v1/tasks/{id}/rate", s.withTrust(s.rate))
}

func (s *Server) withTrust(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.trust == nil {
			writeError(w, http.StatusServiceUnavailable, "this node does not compute reputation.")
			return
		}
		h(w, r)
	}
}

func (s *Server) reputation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" && kind != "personal" && kind != "community" {
		writeError(w, http.StatusBadRequest, "kind must be personal or community.")
		return
	}
	out, err := s.trust.Reputation(r.Context(), q.Get("community"), kind, q.Get("peer"))
	if err != nil {
		s.backendError(w, r, "compute the reputation", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) certifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out, err := s.trust.Certifications(r.Context(), q.Get("community"), q.Get("subject"))
	if err != nil {
		s.backendError(w, r, "decide the certifications", err)
		return
	}
	out = nonNil(out)
	for i := range out {
		out[i].Reasons = nonNil(out[i].Reasons)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) trustedPeers(w http.ResponseWriter, r *http.Request) {
	out, err := s.trust.TrustedPeers(r.Context())
	if err != nil {
		s.backendError(w, r, "list the trusted peers", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *Server) addTrustedPeer(w http.ResponseWriter, r *http.Request) {
	var req TrustPeerRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.PeerID == "" {
		writeError(w, http.StatusBadRequest, "name the peer to trust in \"peer_id\".")
		return
	}
	p, err := s.trust.AddTrustedPeer(r.Context(), req.PeerID)
	if err != nil {
		s.backendError(w, r, "trust the peer", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) removeTrustedPeer(w http.ResponseWriter, r *http.Request) {
	if err := s.trust.RemoveTrustedPeer(r.Context(), r.PathValue("peer")); err != nil {
		s.backendError(w, r, "stop trusting the peer", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rate(w http.ResponseWriter, r *http.Request) {
	var req RateRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Score < 0 || req.Score > 1000 {
		writeError(w, http.StatusBadRequest, "score must be between 0 and 1000 (thousandths).")
		return
	}
	out, err := s.trust.Rate(r.Context(), r.PathValue("id"), req)
	if err != nil {
		s.backendError(w, r, "rate the task", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}
