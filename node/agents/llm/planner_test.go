package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/agents/llm/llmtest"
)

// fakeDelegator stands for the node's requester: it lists skills and runs
// subtasks with run, recording every request.
type fakeDelegator struct {
	skills []agents.Skill
	run    func(ctx context.Context, req agents.SubtaskRequest) (agents.SubtaskResult, error)

	mu    sync.Mutex
	calls []agents.SubtaskRequest
}

func (d *fakeDelegator) Skills(context.Context) []agents.Skill { return d.skills }

func (d *fakeDelegator) Delegate(ctx context.Context, req agents.SubtaskRequest) (agents.SubtaskResult, error) {
	d.mu.Lock()
	d.calls = append(d.calls, req)
	d.mu.Unlock()
	return d.run(ctx, req)
}

func (d *fakeDelegator) requests() []agents.SubtaskRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

const (
	textSchema  = `{"type":"object","properties":{"text":{"type":"string","maxLength":10000}},"required":["text"],"additionalProperties":false}`
	statsOutput = `{"type":"object","properties":{"words":{"type":"integer"}}}`
)

// communitySkills is what the fake capability index offers: two text
// skills, another of the planner's own (never offered), and one a model
// cannot be given (its input schema is not an object).
func communitySkills() []agents.Skill {
	return []agents.Skill{
		{ID: "text.upper", Description: "Upper-case a text.", Input: json.RawMessage(textSchema), Output: json.RawMessage(`{"type":"object"}`)},
		{ID: "text.stats", Description: "Count the words of a text.", Input: json.RawMessage(textSchema), Output: json.RawMessage(statsOutput)},
		{ID: "plan.report", Description: "The planner itself.", Input: json.RawMessage(`{"type":"object"}`), Output: json.RawMessage(`{"type":"object"}`)},
		{ID: "odd.schema", Description: "Takes anything.", Input: json.RawMessage(`true`), Output: json.RawMessage(`true`)},
	}
}

// textSkills runs text.stats and text.upper like the builtin skills would.
func textSkills(_ context.Context, req agents.SubtaskRequest) (agents.SubtaskResult, error) {
	var in struct{ Text string }
	if err := json.Unmarshal(req.Input, &in); err != nil {
		return agents.SubtaskResult{}, err
	}
	var out any
	switch req.Skill {
	case "text.stats":
		out = map[string]int{"words": len(strings.Fields(in.Text))}
	case "text.upper":
		out = map[string]string{"text": strings.ToUpper(in.Text)}
	default:
		return agents.SubtaskResult{}, agents.Errorf(agents.CodeUnknownSkill, "no provider offers %s", req.Skill)
	}
	b, _ := json.Marshal(out)
	return agents.SubtaskResult{TaskID: "t-" + req.Skill, Status: "completed", Executor: "12D3KooWexec", Output: b}, nil
}

func plannerSpec(baseURL string) *agents.Spec {
	return &agents.Spec{
		Name:    "planner",
		Backend: "openai",
		Skills: []agents.SkillSpec{{
			ID:           "plan.report",
			Description:  "Report on a text using the community's text skills.",
			InputSchema:  `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`,
			OutputSchema: `{"type":"object","properties":{"summary":{"type":"string"}},"required":["summary"]}`,
		}},
		OpenAI: &agents.OpenAISpec{
			BaseURL:  baseURL,
			Model:    testModel,
			Persona:  "You plan and delegate.",
			Delegate: true,
		},
	}
}

func startPlanner(t *testing.T, spec *agents.Spec, d agents.Delegator) agents.Backend {
	t.Helper()
	env := testEnv()
	env.Delegator = d
	b, err := Factory(context.Background(), spec, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

const planInput = `{"text":"a b c"}`

func call(name, args string) llmtest.ToolCall { return llmtest.ToolCall{Name: name, Arguments: args} }

func TestPlannerCallsToolsInTurn(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{
		{Name: "first", Match: llmtest.Match{Messages: 2}, Body: llmtest.AnswerToolCalls(testModel,
			llmtest.ToolCall{ID: "call_s", Name: "text_stats", Arguments: `{"text": "a b c"}`})},
		{Name: "second", Match: llmtest.Match{ToolContains: `"words":3`}, Body: llmtest.AnswerToolCalls(testModel,
			llmtest.ToolCall{ID: "call_u", Name: "text_upper", Arguments: `{"text":"a b c"}`})},
		{Name: "answer", Match: llmtest.Match{ToolContains: `"A B C"`}, Body: llmtest.Answer(testModel, `{"summary":"3 words: A B C"}`)},
	})
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	b := startPlanner(t, plannerSpec(srv.URL()), d)

	var progress []string
	out, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), func(msg string, _ int) {
		progress = append(progress, msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"summary":"3 words: A B C"}`; got != want {
		t.Errorf("output = %s, want %s", got, want)
	}

	// The Delegator ran both skills, with the agent as origin.
	want := []agents.SubtaskRequest{
		{Skill: "text.stats", Input: json.RawMessage(`{"text":"a b c"}`), Origin: "planner"},
		{Skill: "text.upper", Input: json.RawMessage(`{"text":"a b c"}`), Origin: "planner"},
	}
	if got := d.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("subtasks = %+v, want %+v", got, want)
	}
	if got, want := strings.Join(progress, "|"), "waiting for the model|calling text.stats|waiting for the model|calling text.upper|waiting for the model"; got != want {
		t.Errorf("progress = %s, want %s", got, want)
	}

	reqs := srv.Requests()
	var exchanges []string
	for _, r := range reqs {
		exchanges = append(exchanges, r.Exchange)
	}
	if got := strings.Join(exchanges, ","); got != "first,second,answer" {
		t.Fatalf("exchanges = %s", got)
	}
	// Every turn offers the same tools: the community's, not the agent's own
	// skill, and not one whose schema cannot be a function's parameters.
	for i, r := range reqs {
		var names []string
		for _, tl := range r.Tools {
			names = append(names, tl.Name)
		}
		if got := strings.Join(names, ","); got != "text_stats,text_upper" {
			t.Errorf("request %d offered tools %s", i, got)
		}
		if r.ResponseFormat != "" {
			t.Errorf("request %d asked for response_format %q; a planner does not by default", i, r.ResponseFormat)
		}
	}
	stats, _ := reqs[0].Tool("text_stats")
	if stats.Description != "Count the words of a text." {
		t.Errorf("description = %q", stats.Description)
	}
	if !jsonEqual(t, stats.Parameters, json.RawMessage(textSchema)) {
		t.Errorf("parameters = %s, want %s", stats.Parameters, textSchema)
	}
	if sys := reqs[0].System(); !strings.HasPrefix(sys, "You plan and delegate.") || !strings.Contains(sys, "You may call the functions") {
		t.Errorf("system prompt = %q", sys)
	}
	if reqs[0].User() != planInput {
		t.Errorf("user message = %q", reqs[0].User())
	}

	// The last request carries the whole conversation: each call and its
	// result, tied by the call's ID.
	last := reqs[2]
	var roles []string
	for _, m := range last.Messages {
		roles = append(roles, m.Role)
	}
	if got := strings.Join(roles, ","); got != "system,user,assistant,tool,assistant,tool" {
		t.Fatalf("roles = %s", got)
	}
	if tc := last.Messages[2].ToolCalls; len(tc) != 1 || tc[0].ID != "call_s" || tc[0].Name != "text_stats" || tc[0].Arguments != `{"text": "a b c"}` {
		t.Errorf("assistant tool calls = %+v", tc)
	}
	tools := last.ToolMessages()
	if tools[0].ToolCallID != "call_s" || tools[0].Content != `{"words":3}` {
		t.Errorf("first tool message = %+v", tools[0])
	}
	if tools[1].ToolCallID != "call_u" || tools[1].Content != `{"text":"A B C"}` {
		t.Errorf("second tool message = %+v", tools[1])
	}
}

func TestPlannerTwoCallsInOneTurn(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{
		{Match: llmtest.Match{Messages: 2}, Body: llmtest.AnswerToolCalls(testModel,
			call("text_stats", `{"text":"a b c"}`), call("text_upper", `{"text":"a b c"}`))},
		{Match: llmtest.Match{Messages: 5}, Body: llmtest.Answer(testModel, "```json\n{\"summary\": \"3 words: A B C\"}\n```")},
	})
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	b := startPlanner(t, plannerSpec(srv.URL()), d)
	out, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"summary":"3 words: A B C"}` {
		t.Errorf("output = %s", out)
	}
	if n := len(d.requests()); n != 2 {
		t.Errorf("%d subtasks, want 2", n)
	}
	last := srv.LastRequest()
	tools := last.ToolMessages()
	if len(tools) != 2 ||
		tools[0].ToolCallID != "call_1" || tools[0].Content != `{"words":3}` ||
		tools[1].ToolCallID != "call_2" || tools[1].Content != `{"text":"A B C"}` {
		t.Errorf("tool messages = %+v", tools)
	}
	if tc := last.Messages[2].ToolCalls; len(tc) != 2 {
		t.Errorf("assistant message has %d tool calls, want 2", len(tc))
	}
}

func TestPlannerBadCallsGoBackToTheModel(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{
		{Match: llmtest.Match{Messages: 2}, Body: llmtest.AnswerToolCalls(testModel,
			call("text_count", `{"text":"a b c"}`),
			call("text_stats", `{"text": 3}`),
			call("text_upper", `{"text": "a b c"`),
			call("plan_report", `{"text":"a b c"}`))},
		{Match: llmtest.Match{Messages: 7}, Body: llmtest.AnswerToolCalls(testModel, call("text_stats", `{"text":"a b c"}`))},
		{Match: llmtest.Match{ToolContains: `"words":3`}, Body: llmtest.Answer(testModel, `{"summary":"3 words"}`)},
	})
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	b := startPlanner(t, plannerSpec(srv.URL()), d)
	out, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"summary":"3 words"}` {
		t.Errorf("output = %s", out)
	}
	// Only the good call became a subtask.
	if got := d.requests(); len(got) != 1 || got[0].Skill != "text.stats" {
		t.Errorf("subtasks = %+v", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	tools := reqs[1].ToolMessages()
	if len(tools) != 4 {
		t.Fatalf("%d tool messages, want 4", len(tools))
	}
	for i, want := range []string{
		`there is no tool \"text_count\"`,
		`the arguments do not match the tool's input schema: at '/text'`,
		`the arguments are not a JSON value`,
		`there is no tool \"plan_report\"`, // its own skill: no self-recursion
	} {
		var te struct{ Error, Code string }
		if err := json.Unmarshal([]byte(tools[i].Content), &te); err != nil || te.Error == "" || te.Code == "" {
			t.Errorf("tool message %d = %s, want an error object", i, tools[i].Content)
		}
		if !strings.Contains(tools[i].Content, want) {
			t.Errorf("tool message %d = %s, want it to contain %s", i, tools[i].Content, want)
		}
	}
}

func TestPlannerRefusedAndFailedSubtasks(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{
		{Match: llmtest.Match{Messages: 2}, Body: llmtest.AnswerToolCalls(testModel,
			call("text_stats", `{"text":"a b c"}`), call("text_upper", `{"text":"a b c"}`))},
		{Match: llmtest.Match{Messages: 5}, Body: llmtest.Answer(testModel, `{"summary":"could not do it"}`)},
	})
	refusal := &agents.RunError{Code: "refused", Reason: "the data-exit policy of agent planner keeps text.stats on this node, and no local agent offers it"}
	d := &fakeDelegator{skills: communitySkills(), run: func(_ context.Context, req agents.SubtaskRequest) (agents.SubtaskResult, error) {
		if req.Skill == "text.stats" {
			return agents.SubtaskResult{}, refusal
		}
		return agents.SubtaskResult{TaskID: "t1", Status: "failed", Code: agents.CodeTimeout, Error: "the task ran out of time"}, nil
	}}
	var progress []string
	b := startPlanner(t, plannerSpec(srv.URL()), d)
	out, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), func(m string, _ int) { progress = append(progress, m) })
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"summary":"could not do it"}` {
		t.Errorf("output = %s", out)
	}
	tools := srv.LastRequest().ToolMessages()
	if len(tools) != 2 {
		t.Fatalf("%d tool messages", len(tools))
	}
	var refused, failed struct{ Error, Code string }
	_ = json.Unmarshal([]byte(tools[0].Content), &refused)
	_ = json.Unmarshal([]byte(tools[1].Content), &failed)
	if refused.Code != "refused" || !strings.Contains(refused.Error, "data-exit policy") {
		t.Errorf("refusal sent back = %s", tools[0].Content)
	}
	if failed.Code != agents.CodeTimeout || failed.Error != "the subtask ended failed: the task ran out of time" {
		t.Errorf("failure sent back = %s", tools[1].Content)
	}
	if !slices.Contains(progress, "text.stats was refused") || !slices.Contains(progress, "text.upper failed") {
		t.Errorf("progress = %q", progress)
	}
}

func TestPlannerMaxToolCalls(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		perTurn  int
		subtasks int
		want     string
	}{
		// The model never stops calling; the bound ends the task.
		{"default", 0, 1, 8, "the model made more than 8 tool calls"},
		{"one per turn", 3, 1, 3, "the model made more than 3 tool calls"},
		// A turn that would go past the bound runs none of its calls.
		{"turn too big", 3, 2, 2, "the model made more than 3 tool calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := make([]llmtest.ToolCall, tc.perTurn)
			for i := range calls {
				calls[i] = call("text_stats", `{"text":"again"}`)
			}
			srv := llmtest.NewServer(t, []llmtest.Exchange{{Body: llmtest.AnswerToolCalls(testModel, calls...)}})
			d := &fakeDelegator{skills: communitySkills(), run: textSkills}
			spec := plannerSpec(srv.URL())
			spec.OpenAI.MaxToolCalls = tc.max
			b := startPlanner(t, spec, d)
			_, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), nil)
			var re *agents.RunError
			if !errors.As(err, &re) || re.Code != agents.CodeBackend || re.Reason != tc.want {
				t.Fatalf("err = %v, want %s: %s", err, agents.CodeBackend, tc.want)
			}
			if n := len(d.requests()); n != tc.subtasks {
				t.Errorf("%d subtasks, want %d", n, tc.subtasks)
			}
		})
	}
}

func TestPlannerErrorsCountTowardsTheBound(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{{Body: llmtest.AnswerToolCalls(testModel, call("nope", `{}`))}})
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	spec := plannerSpec(srv.URL())
	spec.OpenAI.MaxToolCalls = 2
	b := startPlanner(t, spec, d)
	_, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), nil)
	if err == nil || !strings.Contains(err.Error(), "more than 2 tool calls") {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestPlannerDeadline(t *testing.T) {
	t.Run("slow subtask", func(t *testing.T) {
		srv := llmtest.NewServer(t, []llmtest.Exchange{{Body: llmtest.AnswerToolCalls(testModel, call("text_stats", `{"text":"x"}`))}})
		var sawDeadline bool
		d := &fakeDelegator{skills: communitySkills(), run: func(ctx context.Context, _ agents.SubtaskRequest) (agents.SubtaskResult, error) {
			_, sawDeadline = ctx.Deadline()
			<-ctx.Done()
			return agents.SubtaskResult{}, ctx.Err()
		}}
		b := startPlanner(t, plannerSpec(srv.URL()), d)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := b.Run(ctx, "plan.report", json.RawMessage(planInput), nil)
		if !errors.Is(err, context.DeadlineExceeded) || agents.CodeOf(err) != agents.CodeTimeout {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if !sawDeadline {
			t.Error("the subtask did not get the task's deadline")
		}
		if n := len(srv.Requests()); n != 1 {
			t.Errorf("%d requests after the deadline, want 1", n)
		}
	})
	t.Run("slow model", func(t *testing.T) {
		srv := llmtest.NewServer(t, []llmtest.Exchange{
			{Match: llmtest.Match{Messages: 2}, Body: llmtest.AnswerToolCalls(testModel, call("text_stats", `{"text":"x"}`))},
			{Hang: true},
		})
		d := &fakeDelegator{skills: communitySkills(), run: textSkills}
		b := startPlanner(t, plannerSpec(srv.URL()), d)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := b.Run(ctx, "plan.report", json.RawMessage(planInput), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
		if n := len(d.requests()); n != 1 {
			t.Errorf("%d subtasks, want 1", n)
		}
	})
}

func TestPlannerToolsFilter(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{
		{Match: llmtest.Match{Messages: 2}, Body: llmtest.AnswerToolCalls(testModel, call("text_stats", `{"text":"a"}`))},
		{Body: llmtest.Answer(testModel, `{"summary":"x"}`)},
	})
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	spec := plannerSpec(srv.URL())
	spec.OpenAI.Tools = []string{"text.upper"}
	b := startPlanner(t, spec, d)
	if _, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), nil); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests()[0]; len(r.Tools) != 1 || r.Tools[0].Name != "text_upper" {
		t.Errorf("tools = %+v, want text_upper only", r.Tools)
	}
	if len(d.requests()) != 0 {
		t.Errorf("a skill outside openai.tools ran: %+v", d.requests())
	}
	if !strings.Contains(srv.LastRequest().LastTool(), `there is no tool \"text_stats\"`) {
		t.Errorf("tool message = %s", srv.LastRequest().LastTool())
	}
}

func TestPlannerNoTools(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tools []string
		want  string
	}{
		{"none offered", nil, "no skill of this node or its communities"},
		{"none of the listed", []string{"text.stats"}, "none of the skills in openai.tools"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := llmtest.NewServer(t, nil)
			d := &fakeDelegator{skills: communitySkills()[2:], run: textSkills}
			spec := plannerSpec(srv.URL())
			spec.OpenAI.Tools = tc.tools
			b := startPlanner(t, spec, d)
			_, err := b.Run(context.Background(), "plan.report", json.RawMessage(planInput), nil)
			if agents.CodeOf(err) != agents.CodeBackend || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d requests, want none", n)
			}
		})
	}
}

func TestPlannerFactoryErrors(t *testing.T) {
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	for _, tc := range []struct {
		name      string
		edit      func(*agents.Spec)
		delegator agents.Delegator
		field     string
	}{
		{"no delegator", func(*agents.Spec) {}, nil, "openai.delegate:"},
		{"negative max", func(s *agents.Spec) { s.OpenAI.MaxToolCalls = -1 }, d, "openai.max_tool_calls:"},
		{"max without delegate", func(s *agents.Spec) { s.OpenAI.Delegate, s.OpenAI.MaxToolCalls = false, 3 }, d, "openai.max_tool_calls:"},
		{"tools without delegate", func(s *agents.Spec) { s.OpenAI.Delegate, s.OpenAI.Tools = false, []string{"text.stats"} }, d, "openai.tools:"},
		{"bad tool ID", func(s *agents.Spec) { s.OpenAI.Tools = []string{"Text Stats"} }, d, "openai.tools[0]:"},
		{"own skill", func(s *agents.Spec) { s.OpenAI.Tools = []string{"text.stats", "plan.report"} }, d, "openai.tools[1]:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := plannerSpec("http://127.0.0.1:11434/v1")
			tc.edit(spec)
			env := testEnv()
			if tc.delegator != nil {
				env.Delegator = tc.delegator
			}
			_, err := Factory(context.Background(), spec, env)
			if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
}

func TestToolNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []string
		want map[string]string // name -> ID
	}{
		{"dots", []string{"text.stats", "text.upper"}, map[string]string{"text_stats": "text.stats", "text_upper": "text.upper"}},
		{"valid names are kept", []string{"text.stats", "text_stats", "text-stats"},
			map[string]string{"text_stats": "text_stats", "text-stats": "text-stats", "text_stats_2": "text.stats"}},
		{"collisions in ID order", []string{"a_b_2", "a.b", "a:b", "a_b"},
			map[string]string{"a_b": "a_b", "a_b_2": "a_b_2", "a_b_3": "a.b", "a_b_4": "a:b"}},
		{"long", []string{strings.Repeat("x", 60) + ".long.one", strings.Repeat("x", 60) + ".long.two"},
			map[string]string{strings.Repeat("x", 60) + "_lon": strings.Repeat("x", 60) + ".long.one", strings.Repeat("x", 60) + "_l_2": strings.Repeat("x", 60) + ".long.two"}},
		{"empty and duplicate", []string{"", "a.b", "a.b"}, map[string]string{"a_b": "a.b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toolNames(tc.ids)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("toolNames(%q) = %v, want %v", tc.ids, got, tc.want)
			}
			rev := slices.Clone(tc.ids)
			slices.Reverse(rev)
			if again := toolNames(rev); fmt.Sprint(again) != fmt.Sprint(got) {
				t.Errorf("the names depend on the order of the IDs: %v, then %v", got, again)
			}
		})
	}
}

var openAIToolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func FuzzToolNames(f *testing.F) {
	for _, s := range []string{
		"text.stats\ntext_stats", "a\na.b\na_b\na_b_2", strings.Repeat("y", 130) + "\n" + strings.Repeat("y", 129),
		"é.ü\n__", "\n\n", "x_2\nx.\nx_", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		ids := strings.Split(list, "\n")
		names := toolNames(ids)
		seen := map[string]bool{}
		for name, id := range names {
			if !openAIToolName.MatchString(name) {
				t.Fatalf("name %q (for %q) is not a valid function name", name, id)
			}
			if seen[id] {
				t.Fatalf("ID %q has two names", id)
			}
			seen[id] = true
			if validToolName(id) && name != id {
				t.Fatalf("ID %q is a valid name but became %q", id, name)
			}
		}
		for _, id := range ids {
			if id != "" && !seen[id] {
				t.Fatalf("ID %q got no name", id)
			}
		}
	})
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// TestPlannerRecordedConversation replays a conversation recorded from
// Ollama, whose first tool call came with finish_reason "stop".
func TestPlannerRecordedConversation(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	d := &fakeDelegator{skills: communitySkills(), run: textSkills}
	b := startPlanner(t, plannerSpec(srv.URL()), d)
	out, err := b.Run(context.Background(), "plan.report", json.RawMessage(`{"text":"a b c case:plan"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"summary":"4 words: A B C CASE:PLAN"}` {
		t.Errorf("output = %s", out)
	}
	var skills []string
	for _, r := range d.requests() {
		skills = append(skills, r.Skill+" "+string(r.Input)+" "+r.Origin)
	}
	if got, want := strings.Join(skills, "|"), `text.stats {"text":"a b c case:plan"} planner|text.upper {"text":"a b c case:plan"} planner`; got != want {
		t.Errorf("subtasks = %s, want %s", got, want)
	}
	tools := srv.LastRequest().ToolMessages()
	if len(tools) != 2 || tools[0].ToolCallID != "call_x1n2ha0f" || tools[1].ToolCallID != "call_7kq0c3sd" {
		t.Errorf("tool messages = %+v", tools)
	}
}
