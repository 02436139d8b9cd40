package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	id := s.backend.Identity()
	id.Addrs = nonNil(id.Addrs)
	writeJSON(w, http.StatusOK, id)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.backend.Status(r.Context())
	st.Addrs = nonNil(st.Addrs)
	st.Communities = nonNil(st.Communities)
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	ps := nonNil(s.backend.Peers(r.Context()))
	for i := range ps {
		ps[i].Addrs = nonNil(ps[i].Addrs)
	}
	writeJSON(w, http.StatusOK, ps)
}

func (s *Server) netcheck(w http.ResponseWriter, r *http.Request) {
	n := s.backend.Netcheck(r.Context())
	n.ListenAddrs = nonNil(n.ListenAddrs)
	n.ObservedAddrs = nonNil(n.ObservedAddrs)
	n.RelayReservations = nonNil(n.RelayReservations)
	n.PortMapping.Mapped = nonNil(n.PortMapping.Mapped)
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) communities(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, nonNil(s.backend.Communities(r.Context())))
}

func (s *Server) community(w http.ResponseWriter, r *http.Request) {
	c, err := s.backend.Community(r.Context(), r.PathValue("id"))
	if err != nil {
		s.backendError(w, r, "read the community", err)
		return
	}
	c.Founders = nonNil(c.Founders)
	c.Members = nonNil(c.Members)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) createCommunity(w http.ResponseWriter, r *http.Request) {
	var req CreateCommunityRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusBadRequest, "a community needs a name: set \"name\" in the request.")
		return
	}
	c, err := s.backend.CreateCommunity(r.Context(), req)
	if err != nil {
		s.backendError(w, r, "create the community", err)
		return
	}
	w.Header().Set("Location", "/api/v1/communities/"+url.PathEscape(c.ID))
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) joinCommunity(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	invite := strings.TrimSpace(req.Invite)
	if invite == "" {
		writeError(w, http.StatusBadRequest, "joining needs an invite: set \"invite\" to the invite string a member of the community gave you.")
		return
	}
	j, err := s.backend.JoinCommunity(r.Context(), invite)
	if err != nil {
		s.backendError(w, r, "join the community", err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) leaveCommunity(w http.ResponseWriter, r *http.Request) {
	if err := s.backend.LeaveCommunity(r.Context(), r.PathValue("id")); err != nil {
		s.backendError(w, r, "leave the community", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request) {
	inv, err := s.backend.Invite(r.Context(), r.PathValue("id"))
	if err != nil {
		s.backendError(w, r, "make an invite for the community", err)
		return
	}
	writeJSON(w, http.StatusOK, inv)
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	var req PublishRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Kind == "" || req.Body == nil {
		writeError(w, http.StatusBadRequest, "a record needs a \"kind\" (attestation or revocation) and a \"body\" object.")
		return
	}
	p, err := s.backend.Publish(r.Context(), req)
	if err != nil {
		s.backendError(w, r, "publish the record", err)
		return
	}
	w.Header().Set("Location", "/api/v1/records/"+url.PathEscape(p.CID))
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rq := RecordQuery{Community: q.Get("community"), Kind: q.Get("kind"), Author: q.Get("author"), Subject: q.Get("subject")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to 10000.")
			return
		}
		rq.Limit = n
	}
	recs, err := s.backend.Records(r.Context(), rq)
	if err != nil {
		s.backendError(w, r, "list records", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(recs))
}

func (s *Server) record(w http.ResponseWriter, r *http.Request) {
	rec, err := s.backend.Record(r.Context(), r.PathValue("cid"))
	if err != nil {
		s.backendError(w, r, "read the record", err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}
