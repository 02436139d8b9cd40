package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/agents/llm/llmtest"
)

const testModel = "qwen2.5:7b-instruct"

func testSpec(baseURL string) *agents.Spec {
	return &agents.Spec{
		Name:    "writer",
		Backend: "openai",
		Skills: []agents.SkillSpec{{
			ID:           "text.summarize",
			Description:  "Summarize a text in one sentence.",
			InputSchema:  `{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`,
			OutputSchema: `{"type":"object","properties":{"summary":{"type":"string"}},"required":["summary"]}`,
			Prompt:       "Summarize this for a busy reader:\n{{input}}",
		}},
		OpenAI: &agents.OpenAISpec{
			BaseURL:     baseURL,
			Model:       testModel,
			APIKeyEnv:   "AGORA_TEST_LLM_KEY",
			Persona:     "You are a terse editor.",
			Temperature: 0.2,
			MaxTokens:   256,
		},
	}
}

func testEnv() agents.Env {
	return agents.Env{Getenv: func(name string) string {
		if name == "AGORA_TEST_LLM_KEY" {
			return "sk-test-123"
		}
		return ""
	}}
}

func start(t *testing.T, spec *agents.Spec) agents.Backend {
	t.Helper()
	b, err := Factory(context.Background(), spec, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func input(tag string) json.RawMessage {
	return json.RawMessage(`{"text":"The quick brown fox jumps over the lazy dog. ` + tag + `"}`)
}

func TestRunSuccess(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	b := start(t, testSpec(srv.URL()))

	var progress []string
	out, err := b.Run(context.Background(), "text.summarize", input("case:ok"), func(msg string, pct int) {
		progress = append(progress, msg)
		if pct != -1 {
			t.Errorf("percent = %d, want -1", pct)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"summary":"A fox jumps over a dog."}`; got != want {
		t.Errorf("output = %s, want %s", got, want)
	}
	if len(progress) != 1 || progress[0] != "waiting for the model" {
		t.Errorf("progress = %q", progress)
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if got := req.Header.Get("Authorization"); got != "Bearer sk-test-123" {
		t.Errorf("Authorization = %q", got)
	}
	if req.Model != testModel {
		t.Errorf("model = %q", req.Model)
	}
	if sys := req.System(); !strings.HasPrefix(sys, "You are a terse editor.") ||
		!strings.Contains(sys, "Summarize a text in one sentence.") ||
		!strings.Contains(sys, `"required":["summary"]`) {
		t.Errorf("system prompt = %q", sys)
	}
	if got, want := req.User(), "Summarize this for a busy reader:\n"+string(input("case:ok")); got != want {
		t.Errorf("user message = %q, want %q", got, want)
	}
	if req.Temperature == nil || *req.Temperature != 0.2 {
		t.Errorf("temperature = %v, want 0.2", req.Temperature)
	}
	if req.MaxTokens == nil || *req.MaxTokens != 256 {
		t.Errorf("max_tokens = %v, want 256", req.MaxTokens)
	}
	if req.ResponseFormat != "json_object" {
		t.Errorf("response_format = %q, want json_object", req.ResponseFormat)
	}
}

func TestRunNoPromptNoKeyNoJSONMode(t *testing.T) {
	srv := llmtest.NewServer(t, []llmtest.Exchange{{
		Match: llmtest.Match{User: `{"text":"plain"}`, ResponseFormat: "none"},
		Body:  llmtest.Answer(testModel, `{"summary":"plain"}`),
	}})
	spec := testSpec(srv.URL())
	spec.Skills[0].Prompt = ""
	spec.OpenAI.APIKeyEnv = ""
	spec.OpenAI.Temperature = 0
	off := false
	spec.OpenAI.JSONMode = &off
	b := start(t, spec)
	out, err := b.Run(context.Background(), "text.summarize", json.RawMessage(`{"text":"plain"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"summary":"plain"}` {
		t.Errorf("output = %s", out)
	}
	req := srv.LastRequest()
	if h := req.Header.Get("Authorization"); h != "" {
		t.Errorf("Authorization = %q, want none", h)
	}
	if req.Temperature != nil {
		t.Errorf("temperature = %v, want absent", *req.Temperature)
	}
}

func TestRunFencedJSON(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	b := start(t, testSpec(srv.URL()))
	out, err := b.Run(context.Background(), "text.summarize", input("case:fenced"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"summary":"fenced"}` {
		t.Errorf("output = %s", out)
	}
}

func TestRunNotJSON(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	b := start(t, testSpec(srv.URL()))
	_, err := b.Run(context.Background(), "text.summarize", input("case:prose"), nil)
	var re *agents.RunError
	if !errors.As(err, &re) || re.Code != agents.CodeInvalidOutput {
		t.Fatalf("err = %v, want %s", err, agents.CodeInvalidOutput)
	}
	if !strings.Contains(re.Reason, "poem about foxes") {
		t.Errorf("reason %q does not quote the answer", re.Reason)
	}
}

func TestRunResponseFormatRejected(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	b := start(t, testSpec(srv.URL()))
	for i := range 2 {
		out, err := b.Run(context.Background(), "text.summarize", input("case:no-format"), nil)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if string(out) != `{"summary":"no format"}` {
			t.Errorf("run %d: output = %s", i, out)
		}
	}
	var formats []string
	for _, r := range srv.Requests() {
		formats = append(formats, r.ResponseFormat)
	}
	// The second run remembers that the server rejects response_format.
	if got, want := strings.Join(formats, ","), "json_object,,"; got != want {
		t.Errorf("response formats sent = %q, want %q", got, want)
	}
}

func TestRunServerErrors(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	b := start(t, testSpec(srv.URL()))
	for _, tc := range []struct {
		tag, want string
		requests  int
	}{
		// 500 is retried once (the fixture asks for a 1ms delay).
		{"case:server-error", "500 Internal Server Error: model runner has unexpectedly stopped: out of memory", 2},
		{"case:plain-error", "503 Service Unavailable: upstream model is loading", 1},
		{"case:ollama-error", `404 Not Found: {"error": "model \"llama9\" not found, try pulling it first"}`, 1},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			before := len(srv.Requests())
			_, err := b.Run(context.Background(), "text.summarize", input(tc.tag), nil)
			var re *agents.RunError
			if !errors.As(err, &re) || re.Code != agents.CodeBackend {
				t.Fatalf("err = %v, want %s", err, agents.CodeBackend)
			}
			if !strings.HasSuffix(re.Reason, tc.want) {
				t.Errorf("reason = %q, want it to end in %q", re.Reason, tc.want)
			}
			if n := len(srv.Requests()) - before; n != tc.requests {
				t.Errorf("server got %d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestRunHangingServerTimesOut(t *testing.T) {
	srv := llmtest.NewServerFromDir(t, "testdata")
	b := start(t, testSpec(srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := b.Run(ctx, "text.summarize", input("case:hang"), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if agents.CodeOf(err) != agents.CodeTimeout {
		t.Errorf("code = %s", agents.CodeOf(err))
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Run took %v after its deadline", d)
	}
}

func TestRunUnknownSkill(t *testing.T) {
	b := start(t, testSpec("http://127.0.0.1:1/v1"))
	_, err := b.Run(context.Background(), "nope", json.RawMessage(`{}`), nil)
	if agents.CodeOf(err) != agents.CodeUnknownSkill {
		t.Fatalf("err = %v", err)
	}
}

func TestFactoryErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*agents.Spec)
		field string
	}{
		{"no section", func(s *agents.Spec) { s.OpenAI = nil }, "openai:"},
		{"no base_url", func(s *agents.Spec) { s.OpenAI.BaseURL = "" }, "openai.base_url:"},
		{"ftp base_url", func(s *agents.Spec) { s.OpenAI.BaseURL = "ftp://example.com/v1" }, "openai.base_url:"},
		{"relative base_url", func(s *agents.Spec) { s.OpenAI.BaseURL = "localhost:11434/v1" }, "openai.base_url:"},
		{"no model", func(s *agents.Spec) { s.OpenAI.Model = " " }, "openai.model:"},
		{"temperature", func(s *agents.Spec) { s.OpenAI.Temperature = 3 }, "openai.temperature:"},
		{"max_tokens", func(s *agents.Spec) { s.OpenAI.MaxTokens = -1 }, "openai.max_tokens:"},
		{"missing key", func(s *agents.Spec) { s.OpenAI.APIKeyEnv = "AGORA_TEST_NO_SUCH_KEY" }, "AGORA_TEST_NO_SUCH_KEY"},
		{"no skills", func(s *agents.Spec) { s.Skills = nil }, "skills:"},
		{"bad schema", func(s *agents.Spec) { s.Skills[0].OutputSchema = "{" }, "skills[0].output_schema:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec("http://127.0.0.1:11434/v1")
			tc.edit(spec)
			_, err := Factory(context.Background(), spec, testEnv())
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
}
