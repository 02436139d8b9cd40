package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// StateFile, in the agents directory, lists the disabled agents, so that
// agent files are never rewritten by the node.
const StateFile = ".state.json"

var (
	// ErrNoAgent is returned for an agent name the Manager does not know.
	ErrNoAgent = errors.New("there is no agent by that name")
	// ErrAgentExists is returned by Add for a name in use, unless replacing.
	ErrAgentExists = errors.New("an agent by that name exists; remove it first or replace it")
	// ErrClosed is returned once the Manager is closed.
	ErrClosed = errors.New("the agents manager is closed")

	errAgentStopped = errors.New("agent stopped")
	errSkillTimeout = errors.New("skill timed out")
)

// AgentInfo describes an agent for the API and the CLI.
type AgentInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Version     string   `json:"version,omitempty"`
	Backend     string   `json:"backend,omitempty"`
	Enabled     bool     `json:"enabled"`
	Shared      bool     `json:"shared"` // sharing mode is community (whether or not it is enabled)
	Communities []string `json:"communities,omitempty"`
	Skills      []Skill  `json:"skills"`
	// Error says why the agent is not running although enabled: its file
	// is broken or its backend failed to start.
	Error string `json:"error,omitempty"`
	// Limits are the agent's limits with defaults filled in.
	Limits Limits `json:"limits"`
	// Exit is the agent's data-exit policy as written.
	Exit ExitSpec `json:"exit"`
	Path string   `json:"path"`
}

// SkillRef is a skill and the agent offering it.
type SkillRef struct {
	Agent string `json:"agent"`
	Skill Skill  `json:"skill"`
}

// Manager owns the agents of a node: it reads the agents directory, runs
// each enabled agent's backend, and runs skills within the agent's limits.
// All methods are safe for concurrent use.
type Manager struct {
	dir       string
	factories map[string]Factory
	env       Env
	log       *slog.Logger

	// ops serialises the methods that change the set of agents, so a slow
	// backend start holds no lock that Run needs.
	ops sync.Mutex

	mu       sync.RWMutex
	agents   map[string]*agent
	disabled map[string]bool
	index    map[string]*running // skill ID -> the running agent that offers it
	subs     map[chan struct{}]struct{}
	closed   bool
}

// agent is one file of the directory.
type agent struct {
	name string
	path string
	spec *Spec    // nil when the file is broken
	err  error    // why it is not running though enabled
	run  *running // nil unless enabled and started
}

// running is a started backend. Its skills change only under Manager.mu.
type running struct {
	name    string
	spec    *Spec
	backend Backend
	skills  []*skillEntry
	sem     chan struct{}
	ctx     context.Context // done when the agent stops
	cancel  context.CancelCauseFunc
	// tasks holds a read lock per running task; stop takes the write lock
	// to wait for them.
	tasks   sync.RWMutex
	stopped bool
	unwatch chan struct{}
	// conforms is true for a backend whose outputs pass their schemas by
	// construction (Conformer): they are not checked again.
	conforms bool
}

type skillEntry struct {
	skill  Skill
	input  *Schema
	output *Schema
}

// NewManager returns a Manager for dir that builds backends with
// factories (keyed by backend name). Nothing is read before Load.
func NewManager(dir string, factories map[string]Factory, env Env, log *slog.Logger) (*Manager, error) {
	if dir == "" {
		return nil, errors.New("agents: no directory")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if env.Dir == "" {
		env.Dir = dir
	}
	fac := make(map[string]Factory, len(factories))
	for name, f := range factories {
		if f != nil {
			fac[name] = f
		}
	}
	return &Manager{
		dir: dir, factories: fac, env: env, log: log,
		agents:   map[string]*agent{},
		disabled: map[string]bool{},
		index:    map[string]*running{},
		subs:     map[chan struct{}]struct{}{},
	}, nil
}

// Load reads the directory and starts every enabled agent, replacing what
// was loaded before. The first time (no state file and no agent files) it
// writes the builtin agent. A broken file or a backend that fails to start
// is logged and shown by List; it does not stop the others.
func (m *Manager) Load(ctx context.Context) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	if m.isClosed() {
		return ErrClosed
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("create agents directory: %w", err)
	}
	disabled, fresh, err := m.readState()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(m.dir, "*.toml"))
	if err != nil {
		return fmt.Errorf("list agents: %w", err)
	}
	if fresh {
		if len(files) == 0 {
			path := filepath.Join(m.dir, "builtin.toml")
			if err := writeFileAtomic(path, []byte(BuiltinAgentFile)); err != nil {
				return fmt.Errorf("write the builtin agent: %w", err)
			}
			files = []string{path}
			m.log.Info("wrote the builtin agent", slog.String("path", path))
		}
		if err := m.writeState(nil); err != nil {
			return err
		}
	}

	agents := map[string]*agent{}
	for _, path := range files {
		base := filepath.Base(path)
		if strings.HasPrefix(base, ".") {
			continue
		}
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			continue
		}
		a := &agent{name: strings.TrimSuffix(base, ".toml"), path: path}
		agents[a.name] = a
		data, err := os.ReadFile(path)
		if err == nil {
			a.spec, err = ParseSpec(path, data)
		}
		if err != nil {
			a.err = err
			m.log.Warn("agent file is broken", slog.String("path", path), slog.Any("err", err))
			continue
		}
		if disabled[a.name] {
			continue
		}
		a.run, a.err = m.start(ctx, a.spec)
		if a.err != nil {
			m.log.Warn("agent did not start", slog.String("agent", a.name), slog.Any("err", a.err))
		}
	}

	m.mu.Lock()
	old := m.agents
	m.agents, m.disabled = agents, disabled
	m.reindex()
	m.mu.Unlock()
	for _, a := range old {
		if a.run != nil {
			m.stop(a.run)
		}
	}
	for _, a := range agents {
		if a.run != nil {
			m.watch(a.run)
		}
	}
	m.notify()
	return nil
}

// Add installs an agent file (the bytes as given, comments and all): it is
// parsed, its backend started, and only then written to <dir>/<name>.toml.
// A name in use is ErrAgentExists unless replace is set; the replaced
// agent's running tasks are canceled. The agent ends up enabled.
func (m *Manager) Add(ctx context.Context, data []byte, replace bool) (AgentInfo, error) {
	m.ops.Lock()
	defer m.ops.Unlock()
	if m.isClosed() {
		return AgentInfo{}, ErrClosed
	}
	spec, err := ParseSpec("", data)
	if err != nil {
		return AgentInfo{}, err
	}
	path := filepath.Join(m.dir, spec.Name+".toml")
	spec.Path = path
	m.mu.RLock()
	old := m.agents[spec.Name]
	m.mu.RUnlock()
	if !replace {
		if _, err := os.Stat(path); old != nil || err == nil {
			return AgentInfo{}, fmt.Errorf("agent %q: %w", spec.Name, ErrAgentExists)
		}
	}
	r, err := m.start(ctx, spec)
	if err != nil {
		return AgentInfo{}, err
	}
	if err := m.checkConflicts(r); err != nil {
		m.stop(r)
		return AgentInfo{}, err
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		m.stop(r)
		return AgentInfo{}, fmt.Errorf("create agents directory: %w", err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		m.stop(r)
		return AgentInfo{}, fmt.Errorf("write agent file: %w", err)
	}
	a := &agent{name: spec.Name, path: path, spec: spec, run: r}
	m.mu.Lock()
	wasDisabled := m.disabled[a.name]
	delete(m.disabled, a.name)
	m.agents[a.name] = a
	m.reindex()
	info := m.info(a)
	disabled := m.disabledList()
	m.mu.Unlock()
	if wasDisabled {
		m.saveState(disabled)
	}
	if old != nil && old.run != nil {
		m.stop(old.run)
	}
	m.watch(r)
	m.notify()
	m.log.Info("agent added", slog.String("agent", a.name), slog.Bool("replaced", old != nil))
	return info, nil
}

// Remove stops an agent (canceling its running tasks) and deletes its file.
func (m *Manager) Remove(name string) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	if m.isClosed() {
		return ErrClosed
	}
	m.mu.RLock()
	a := m.agents[name]
	m.mu.RUnlock()
	if a == nil {
		return fmt.Errorf("agent %q: %w", name, ErrNoAgent)
	}
	if err := os.Remove(a.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove agent file: %w", err)
	}
	m.mu.Lock()
	delete(m.agents, name)
	wasDisabled := m.disabled[name]
	delete(m.disabled, name)
	m.reindex()
	disabled := m.disabledList()
	m.mu.Unlock()
	if wasDisabled {
		m.saveState(disabled)
	}
	if a.run != nil {
		m.stop(a.run)
	}
	m.notify()
	m.log.Info("agent removed", slog.String("agent", name))
	return nil
}

// Enable starts a disabled agent, or retries one whose file was broken or
// whose backend failed: it re-reads the agent's file.
func (m *Manager) Enable(ctx context.Context, name string) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	if m.isClosed() {
		return ErrClosed
	}
	m.mu.RLock()
	a := m.agents[name]
	m.mu.RUnlock()
	if a == nil {
		return fmt.Errorf("agent %q: %w", name, ErrNoAgent)
	}
	if a.run != nil {
		return nil
	}
	data, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("read agent file: %w", err)
	}
	spec, err := ParseSpec(a.path, data)
	if err == nil {
		var r *running
		if r, err = m.start(ctx, spec); err == nil {
			if err = m.checkConflicts(r); err != nil {
				m.stop(r)
			} else {
				m.mu.Lock()
				m.agents[name] = &agent{name: name, path: a.path, spec: spec, run: r}
				delete(m.disabled, name)
				m.reindex()
				disabled := m.disabledList()
				m.mu.Unlock()
				m.saveState(disabled)
				m.watch(r)
				m.notify()
				m.log.Info("agent enabled", slog.String("agent", name))
				return nil
			}
		}
	}
	// Still not running: keep what we learnt, and the user's wish.
	m.mu.Lock()
	m.agents[name] = &agent{name: name, path: a.path, spec: spec, err: err}
	delete(m.disabled, name)
	disabled := m.disabledList()
	m.mu.Unlock()
	m.saveState(disabled)
	return err
}

// Disable stops an agent, canceling its running tasks, and remembers it
// across restarts.
func (m *Manager) Disable(name string) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	m.mu.RLock()
	a, closed := m.agents[name], m.closed
	disabled := m.disabledList()
	m.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case a == nil:
		return fmt.Errorf("agent %q: %w", name, ErrNoAgent)
	}
	if !slices.Contains(disabled, name) {
		disabled = append(disabled, name)
		sort.Strings(disabled)
		if err := m.writeState(disabled); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.agents[name] = &agent{name: name, path: a.path, spec: a.spec}
	m.disabled[name] = true
	m.reindex()
	m.mu.Unlock()
	if a.run != nil {
		m.stop(a.run)
	}
	m.notify()
	m.log.Info("agent disabled", slog.String("agent", name))
	return nil
}

// Close stops every agent. Later calls but List and Subscribe fail.
func (m *Manager) Close() error {
	m.ops.Lock()
	defer m.ops.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var runs []*running
	for name, a := range m.agents {
		if a.run != nil {
			runs = append(runs, a.run)
			m.agents[name] = &agent{name: a.name, path: a.path, spec: a.spec}
		}
	}
	m.reindex()
	m.mu.Unlock()
	var errs []error
	for _, r := range runs {
		if err := m.stop(r); err != nil {
			errs = append(errs, fmt.Errorf("agent %s: %w", r.name, err))
		}
	}
	m.notify()
	return errors.Join(errs...)
}

// List describes every agent, broken ones included, sorted by name.
func (m *Manager) List() []AgentInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]AgentInfo, 0, len(m.agents))
	for _, a := range m.agents {
		out = append(out, m.info(a))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Agent describes one agent.
func (m *Manager) Agent(name string) (AgentInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := m.agents[name]
	if a == nil {
		return AgentInfo{}, false
	}
	return m.info(a), true
}

// info needs m.mu.
func (m *Manager) info(a *agent) AgentInfo {
	info := AgentInfo{Name: a.name, Path: a.path, Enabled: !m.disabled[a.name], Skills: []Skill{}}
	if a.err != nil {
		info.Error = a.err.Error()
	}
	if s := a.spec; s != nil {
		info.Description, info.Version, info.Backend = s.Description, s.Version, s.Backend
		info.Shared = s.Sharing.Mode != "private"
		info.Communities = slices.Clone(s.Sharing.Communities)
		info.Limits = s.Limits
		info.Exit = s.Exit
	}
	switch {
	case a.run != nil:
		for _, se := range a.run.skills {
			info.Skills = append(info.Skills, se.skill)
		}
	case a.spec != nil && a.spec.Backend == "builtin":
		for _, ss := range a.spec.Skills {
			if b := findBuiltin(ss.ID); b != nil {
				info.Skills = append(info.Skills, b.skill)
			}
		}
	case a.spec != nil:
		if sks, err := SkillsFromSpec(a.spec); err == nil {
			info.Skills = sks
		}
	}
	return info
}

// Skill finds the enabled agent offering skill id.
func (m *Manager) Skill(id string) (string, Skill, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.index[id]
	if r == nil {
		return "", Skill{}, false
	}
	return r.name, r.entry(id).skill, true
}

// Skills lists the skills of enabled agents, by agent name; with shared
// set, only those of agents whose sharing mode is community.
func (m *Manager) Skills(shared bool) []SkillRef {
	return m.skillRefs(func(s *Spec) bool { return !shared || s.Sharing.Mode != "private" })
}

// SharedIn lists the skills shared with community: enabled agents whose
// sharing mode is community and whose communities are empty (all) or
// include it.
func (m *Manager) SharedIn(community string) []SkillRef {
	return m.skillRefs(func(s *Spec) bool {
		c := s.Sharing.Communities
		return s.Sharing.Mode != "private" && (len(c) == 0 || slices.Contains(c, community))
	})
}

func (m *Manager) skillRefs(keep func(*Spec) bool) []SkillRef {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []SkillRef
	for _, name := range m.sortedNames() {
		r := m.agents[name].run
		if r == nil || !keep(r.spec) {
			continue
		}
		for _, se := range r.skills {
			if m.index[se.skill.ID] == r {
				out = append(out, SkillRef{Agent: name, Skill: se.skill})
			}
		}
	}
	return out
}

// Subscribe returns a channel signalled whenever the set of skills or of
// shared agents may have changed. Signals coalesce: a slow reader gets one
// for many changes, and the Manager never blocks on it. Call the returned
// function to unsubscribe.
func (m *Manager) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			m.mu.Lock()
			delete(m.subs, ch)
			m.mu.Unlock()
		})
	}
}

func (m *Manager) notify() {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Check tells whether input may run as skill id here, as Run would: the
// skill is known and enabled, and the input within size and valid. It
// takes no slot.
func (m *Manager) Check(id string, input json.RawMessage) error {
	r, se, err := m.lookup(id)
	if err != nil {
		return err
	}
	return checkInput(r, se, input)
}

// TryAcquire takes one of the concurrency slots of the agent offering
// skill id, without waiting (CodeBusy when none is free), so a network
// executor can admit or reject a task before accepting it. The caller then
// uses RunAcquired and calls release when done; release is idempotent.
func (m *Manager) TryAcquire(id string) (release func(), err error) {
	r, _, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return r.tryAcquire()
}

// Run runs skill id on input: the input is checked against the size limit
// and the input schema, a concurrency slot is taken without waiting, the
// agent's timeout applies, and the output is checked against the size
// limit and the output schema. Errors are *RunError. progress runs on the
// backend's goroutine and must not disable, remove or replace the agent
// (that waits for the task to end).
func (m *Manager) Run(ctx context.Context, id string, input json.RawMessage, progress Progress) (json.RawMessage, error) {
	r, se, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	if err := checkInput(r, se, input); err != nil {
		return nil, err
	}
	release, err := r.tryAcquire()
	if err != nil {
		return nil, err
	}
	defer release()
	return m.run(ctx, r, se, input, progress)
}

// RunAcquired is Run for a caller holding a slot from TryAcquire. If the
// agent was replaced in between, the task runs on the new one without a
// slot of its own.
func (m *Manager) RunAcquired(ctx context.Context, id string, input json.RawMessage, progress Progress) (json.RawMessage, error) {
	r, se, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	if err := checkInput(r, se, input); err != nil {
		return nil, err
	}
	return m.run(ctx, r, se, input, progress)
}

// Admission is an admitted task: the agent that will run it and its
// limits. Release must be called once the task ends (it is idempotent).
type Admission struct {
	Agent   string
	Limits  Limits
	Release func()
	// Pure is true for the builtin backend: deterministic, quick, and with
	// no effect outside the process. Every other backend runs a command,
	// a model or a server, whose work may have effects.
	Pure bool
}

// Admit does in one lookup what a network executor needs before it accepts
// a task: the skill is known and enabled, shared with community when
// shared is true (a private skill then reads as unknown), the input is
// within size and valid, and a concurrency slot is free. Run the task with
// RunAdmitted, which does not check the input again.
func (m *Manager) Admit(id string, input json.RawMessage, community string, shared bool) (Admission, error) {
	r, se, err := m.lookup(id)
	if err != nil {
		return Admission{}, err
	}
	if shared {
		c := r.spec.Sharing.Communities
		if r.spec.Sharing.Mode == "private" || (len(c) > 0 && !slices.Contains(c, community)) {
			return Admission{}, Errorf(CodeUnknownSkill, "no agent here offers skill %s to the community", id)
		}
	}
	if err := checkInput(r, se, input); err != nil {
		return Admission{}, err
	}
	release, err := r.tryAcquire()
	if err != nil {
		return Admission{}, err
	}
	return Admission{Agent: r.name, Limits: r.spec.Limits, Release: release, Pure: r.spec.Backend == "builtin"}, nil
}

// RunAdmitted runs a task admitted by Admit: its input is not checked
// again. The output is checked as Run checks it.
func (m *Manager) RunAdmitted(ctx context.Context, id string, input json.RawMessage, progress Progress) (json.RawMessage, error) {
	r, se, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	return m.run(ctx, r, se, input, progress)
}

func (m *Manager) lookup(id string) (*running, *skillEntry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.index[id]; r != nil {
		return r, r.entry(id), nil
	}
	for _, name := range m.sortedNames() {
		a := m.agents[name]
		if a.run != nil || a.spec == nil {
			continue
		}
		for _, ss := range a.spec.Skills {
			if ss.ID == id {
				if m.disabled[name] {
					return nil, nil, Errorf(CodeDisabled, "skill %s belongs to agent %s, which is disabled", id, name)
				}
				return nil, nil, Errorf(CodeDisabled, "skill %s belongs to agent %s, which is not running: %v", id, name, a.err)
			}
		}
	}
	return nil, nil, Errorf(CodeUnknownSkill, "no agent here offers skill %s", id)
}

func checkInput(r *running, se *skillEntry, input json.RawMessage) error {
	if max := r.spec.Limits.MaxInput; len(input) > max {
		return Errorf(CodeInputTooBig, "the input is %d bytes; skill %s takes at most %d", len(input), se.skill.ID, max)
	}
	if err := se.input.Validate(input); err != nil {
		return Errorf(CodeInvalidInput, "%v", err)
	}
	return nil
}

func (r *running) tryAcquire() (func(), error) {
	select {
	case r.sem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-r.sem }) }, nil
	default:
		return nil, Errorf(CodeBusy, "agent %s is running %d tasks, its limit; try later or elsewhere", r.name, cap(r.sem))
	}
}

func (r *running) entry(id string) *skillEntry {
	for _, se := range r.skills {
		if se.skill.ID == id {
			return se
		}
	}
	return nil
}

func (m *Manager) run(ctx context.Context, r *running, se *skillEntry, input json.RawMessage, progress Progress) (json.RawMessage, error) {
	r.tasks.RLock()
	defer r.tasks.RUnlock()
	if r.stopped {
		return nil, Errorf(CodeDisabled, "agent %s stopped", r.name)
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopWatch := context.AfterFunc(r.ctx, func() { cancel(errAgentStopped) })
	defer stopWatch()
	timeout := r.spec.Limits.Timeout.Duration
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, timeout, errSkillTimeout)
	defer cancelTimeout()

	// Progress must not be called once Run returned, whatever the backend.
	var pmu sync.Mutex
	done := false
	defer func() { pmu.Lock(); done = true; pmu.Unlock() }()
	report := func(msg string, pct int) {
		pmu.Lock()
		defer pmu.Unlock()
		if !done && progress != nil {
			progress(msg, pct)
		}
	}

	out, err := r.backend.Run(ctx, se.skill.ID, input, report)
	if ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case parent.Err() != nil:
			if errors.Is(parent.Err(), context.DeadlineExceeded) {
				return nil, Errorf(CodeTimeout, "the task's deadline passed")
			}
			return nil, Errorf(CodeCanceled, "the task was canceled")
		case errors.Is(cause, errAgentStopped):
			return nil, Errorf(CodeDisabled, "agent %s was disabled, removed or replaced while the task ran", r.name)
		case errors.Is(cause, errSkillTimeout):
			return nil, Errorf(CodeTimeout, "skill %s ran longer than its %s limit", se.skill.ID, timeout)
		}
	}
	if err != nil {
		var re *RunError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, Errorf(CodeBackend, "%v", err)
	}
	if max := r.spec.Limits.MaxOutput; len(out) > max {
		return nil, Errorf(CodeOutputTooBig, "the output is %d bytes; skill %s may return at most %d", len(out), se.skill.ID, max)
	}
	if r.conforms {
		// Its shape is right by construction; that it is JSON at all is
		// cheap to check, and everything downstream needs it.
		if !json.Valid(out) {
			return nil, Errorf(CodeInvalidOutput, "the output is not JSON")
		}
		return out, nil
	}
	if err := se.output.Validate(out); err != nil {
		return nil, Errorf(CodeInvalidOutput, "%v", err)
	}
	return out, nil
}

// start builds an agent's backend and compiles its skills.
func (m *Manager) start(ctx context.Context, spec *Spec) (*running, error) {
	f := m.factories[spec.Backend]
	if f == nil {
		return nil, &SpecError{Path: spec.Path, Field: "backend", Err: fmt.Errorf("backend %q is not available here; this node has %s", spec.Backend, strings.Join(m.backendNames(), ", "))}
	}
	b, err := f(ctx, spec, m.env)
	if err != nil {
		return nil, &SpecError{Path: spec.Path, Err: err}
	}
	rctx, cancel := context.WithCancelCause(context.Background())
	r := &running{
		name: spec.Name, spec: spec, backend: b,
		sem: make(chan struct{}, spec.Limits.Concurrency),
		ctx: rctx, cancel: cancel, unwatch: make(chan struct{}),
	}
	if c, ok := b.(Conformer); ok {
		r.conforms = c.OutputConforms()
	}
	r.skills = m.compileSkills(r.name, b.Skills())
	return r, nil
}

// compileSkills compiles the schemas of a backend's skills. A skill whose
// ID or schemas are bad (an MCP server's tool, say) is left out and logged.
func (m *Manager) compileSkills(agent string, skills []Skill) []*skillEntry {
	out := make([]*skillEntry, 0, len(skills))
	seen := map[string]bool{}
	for _, sk := range skills {
		se := &skillEntry{skill: sk}
		var err error
		switch {
		case !ValidSkillID(sk.ID):
			err = errors.New("invalid skill ID")
		case seen[sk.ID]:
			err = errors.New("skill ID offered twice")
		}
		if err == nil {
			se.input, err = CompileSchema(orDefault(sk.Input))
		}
		if err == nil {
			se.output, err = CompileSchema(orDefault(sk.Output))
		}
		if err != nil {
			m.log.Warn("skill left out", slog.String("agent", agent), slog.String("skill", sk.ID), slog.Any("err", err))
			continue
		}
		seen[sk.ID] = true
		se.skill.Input, se.skill.Output = orDefault(sk.Input), orDefault(sk.Output)
		out = append(out, se)
	}
	return out
}

func orDefault(s json.RawMessage) json.RawMessage {
	if len(s) == 0 {
		return defaultSchema
	}
	return s
}

// checkConflicts refuses an agent offering a skill another enabled agent
// offers: a skill ID must say which agent runs it.
func (m *Manager) checkConflicts(r *running) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, se := range r.skills {
		if other := m.index[se.skill.ID]; other != nil && other.name != r.name {
			return fmt.Errorf("skill %s is already offered by agent %s", se.skill.ID, other.name)
		}
	}
	return nil
}

// reindex rebuilds the skill index; it needs m.mu held for writing. When
// two agents offer a skill (an MCP server's tools changed), the first by
// name keeps it.
func (m *Manager) reindex() {
	m.index = map[string]*running{}
	for _, name := range m.sortedNames() {
		r := m.agents[name].run
		if r == nil {
			continue
		}
		for _, se := range r.skills {
			if other := m.index[se.skill.ID]; other != nil {
				m.log.Warn("skill offered by two agents; the first keeps it",
					slog.String("skill", se.skill.ID), slog.String("agent", other.name), slog.String("ignored", name))
				continue
			}
			m.index[se.skill.ID] = r
		}
	}
}

// watch follows a Watcher backend's skill changes until the agent stops.
func (m *Manager) watch(r *running) {
	w, ok := r.backend.(Watcher)
	if !ok {
		return
	}
	changed := w.Changed()
	go func() {
		for {
			select {
			case _, ok := <-changed:
				if !ok {
					return
				}
				skills := m.compileSkills(r.name, r.backend.Skills())
				m.mu.Lock()
				current := false
				if a := m.agents[r.name]; a != nil && a.run == r {
					r.skills = skills
					m.reindex()
					current = true
				}
				m.mu.Unlock()
				if current {
					m.notify()
				}
			case <-r.unwatch:
				return
			}
		}
	}()
}

// stop cancels an agent's tasks, waits for them and closes its backend.
func (m *Manager) stop(r *running) error {
	r.cancel(errAgentStopped)
	r.tasks.Lock()
	if r.stopped {
		r.tasks.Unlock()
		return nil
	}
	r.stopped = true
	r.tasks.Unlock()
	close(r.unwatch)
	err := r.backend.Close()
	if err != nil {
		m.log.Warn("agent backend did not close cleanly", slog.String("agent", r.name), slog.Any("err", err))
	}
	return err
}

func (m *Manager) isClosed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.closed
}

// sortedNames needs m.mu.
func (m *Manager) sortedNames() []string { return slices.Sorted(maps.Keys(m.agents)) }

func (m *Manager) backendNames() []string { return slices.Sorted(maps.Keys(m.factories)) }

// disabledList needs m.mu.
func (m *Manager) disabledList() []string { return slices.Sorted(maps.Keys(m.disabled)) }

type stateFile struct {
	Disabled []string `json:"disabled"`
}

// readState reads the state file; fresh is true when there is none yet.
func (m *Manager) readState() (disabled map[string]bool, fresh bool, err error) {
	disabled = map[string]bool{}
	data, err := os.ReadFile(filepath.Join(m.dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return disabled, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read agents state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, false, fmt.Errorf("%s is not valid (fix or delete it; it lists the disabled agents): %w", filepath.Join(m.dir, StateFile), err)
	}
	for _, n := range st.Disabled {
		disabled[n] = true
	}
	return disabled, false, nil
}

func (m *Manager) writeState(disabled []string) error {
	if disabled == nil {
		disabled = []string{}
	}
	data, err := json.MarshalIndent(stateFile{Disabled: disabled}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(m.dir, StateFile), append(data, '\n')); err != nil {
		return fmt.Errorf("write agents state: %w", err)
	}
	return nil
}

// saveState writes the state where failing changes nothing the caller can
// undo: the change is in effect now and is logged as not persisted.
func (m *Manager) saveState(disabled []string) {
	if err := m.writeState(disabled); err != nil {
		m.log.Error("agents state not saved; the change is lost at restart", slog.Any("err", err))
	}
}

// writeFileAtomic writes path through a temporary file in the same
// directory and a rename, so readers see the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
