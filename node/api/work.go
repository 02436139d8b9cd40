package api

import (
	"net/http"
	"net/url"
	"strconv"
)

func (s *Server) routeWork(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/agents", s.withWork(s.agents))
	m.HandleFunc("POST /api/v1/agents", s.withWork(s.addAgent))
	m.HandleFunc("DELETE /api/v1/agents/{name}", s.withWork(s.removeAgent))
	m.HandleFunc("POST /api/v1/agents/{name}/enable", s.withWork(s.enableAgent(true)))
	m.HandleFunc("POST /api/v1/agents/{name}/disable", s.withWork(s.enableAgent(false)))
	m.HandleFunc("GET /api/v1/skills", s.withWork(s.skills))
	m.HandleFunc("POST /api/v1/tasks", s.withWork(s.submitTask))
	m.HandleFunc("GET /api/v1/tasks", s.withWork(s.tasks))
	m.HandleFunc("GET /api/v1/tasks/{id}", s.withWork(s.task))
	m.HandleFunc("POST /api/v1/tasks/{id}/cancel", s.withWork(s.cancelTask))
	m.HandleFunc("GET /api/v1/policy/local", s.withWork(s.localPolicy))
	m.HandleFunc("POST /api/v1/workflows/run", s.withWork(s.runWorkflow))
}

func (s *Server) runWorkflow(w http.ResponseWriter, r *http.Request) {
	var req WorkflowRun
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Flow == "" {
		writeError(w, http.StatusBadRequest, "send the workflow file's text in \"flow\".")
		return
	}
	if req.TimeoutMS < 0 {
		writeError(w, http.StatusBadRequest, "\"timeout_ms\" must not be negative.")
		return
	}
	res, err := s.work.RunWorkflow(r.Context(), req)
	if err != nil {
		s.backendError(w, r, "run the workflow", err)
		return
	}
	res.Steps = nonNil(res.Steps)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) localPolicy(w http.ResponseWriter, r *http.Request) {
	ps := nonNil(s.work.LocalPolicy(r.Context()))
	for i := range ps {
		ps[i].Peers = nonNil(ps[i].Peers)
	}
	writeJSON(w, http.StatusOK, ps)
}

func (s *Server) withWork(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.work == nil {
			writeError(w, http.StatusServiceUnavailable, "this node does not run agents.")
			return
		}
		h(w, r)
	}
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request) {
	as := nonNil(s.work.Agents(r.Context()))
	for i := range as {
		as[i].Skills = nonNil(as[i].Skills)
	}
	writeJSON(w, http.StatusOK, as)
}

func (s *Server) addAgent(w http.ResponseWriter, r *http.Request) {
	var req AddAgentRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.TOML == "" {
		writeError(w, http.StatusBadRequest, "send the agent file's text in \"toml\".")
		return
	}
	a, err := s.work.AddAgent(r.Context(), req)
	if err != nil {
		s.backendError(w, r, "add the agent", err)
		return
	}
	a.Skills = nonNil(a.Skills)
	w.Header().Set("Location", "/api/v1/agents/"+url.PathEscape(a.Name))
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) removeAgent(w http.ResponseWriter, r *http.Request) {
	if err := s.work.RemoveAgent(r.Context(), r.PathValue("name")); err != nil {
		s.backendError(w, r, "remove the agent", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) enableAgent(enable bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.work.EnableAgent(r.Context(), r.PathValue("name"), enable)
		if err != nil {
			s.backendError(w, r, "change the agent", err)
			return
		}
		a.Skills = nonNil(a.Skills)
		writeJSON(w, http.StatusOK, a)
	}
}

func (s *Server) skills(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out, err := s.work.Skills(r.Context(), q.Get("community"), q.Get("skill"))
	if err != nil {
		s.backendError(w, r, "list the skills", err)
		return
	}
	out = nonNil(out)
	for i := range out {
		out[i].Providers = nonNil(out[i].Providers)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) submitTask(w http.ResponseWriter, r *http.Request) {
	var req TaskRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Skill == "" {
		writeError(w, http.StatusBadRequest, "name the skill to run in \"skill\".")
		return
	}
	if req.TimeoutMS < 0 {
		writeError(w, http.StatusBadRequest, "\"timeout_ms\" must not be negative.")
		return
	}
	t, err := s.work.SubmitTask(r.Context(), req)
	if err != nil {
		s.backendError(w, r, "submit the task", err)
		return
	}
	w.Header().Set("Location", "/api/v1/tasks/"+url.PathEscape(t.ID))
	code := http.StatusAccepted
	if req.Wait {
		code = http.StatusOK
	}
	writeJSON(w, code, t)
}

func (s *Server) tasks(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be a number from 1 to 10000.")
			return
		}
		limit = n
	}
	ts, err := s.work.Tasks(r.Context(), limit)
	if err != nil {
		s.backendError(w, r, "list the tasks", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ts))
}

func (s *Server) task(w http.ResponseWriter, r *http.Request) {
	t, err := s.work.Task(r.Context(), r.PathValue("id"))
	if err != nil {
		s.backendError(w, r, "read the task", err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) {
	t, err := s.work.CancelTask(r.Context(), r.PathValue("id"))
	if err != nil {
		s.backendError(w, r, "cancel the task", err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
