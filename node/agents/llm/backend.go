package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/agora-p2p/agora/node/agents"
)

// Factory builds the backend of an agent with backend = "openai".
var Factory agents.Factory = newBackend

// maxRetries is how often the client retries a request that failed on the
// way (connection error, 429, 5xx). Once: a local model server that failed
// is rarely helped by more, and the task has its own timeout.
const maxRetries = 1

// errBodyPeek bounds how much of an error response is kept for the message.
const errBodyPeek = 4 << 10

type backend struct {
	chat        openai.ChatCompletionService
	http        *http.Client
	model       string
	persona     string
	temperature float64
	maxTokens   int
	skills      []agents.Skill
	prompts     map[string]string // skill ID -> user message template
	planner     *planner          // nil unless openai.delegate
	// jsonMode is cleared for good once the server rejected response_format
	// and accepted the same request without it.
	jsonMode atomic.Bool
}

func newBackend(_ context.Context, spec *agents.Spec, env agents.Env) (agents.Backend, error) {
	o := spec.OpenAI
	if o == nil {
		return nil, errors.New("openai: an openai agent needs an [openai] section")
	}
	u, err := url.Parse(o.BaseURL)
	switch {
	case o.BaseURL == "":
		return nil, errors.New("openai.base_url: missing; set it to the endpoint, e.g. http://127.0.0.1:11434/v1")
	case err != nil:
		return nil, fmt.Errorf("openai.base_url: %v", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("openai.base_url: %q is not an http(s) URL", o.BaseURL)
	}
	if strings.TrimSpace(o.Model) == "" {
		return nil, errors.New("openai.model: missing; name the model the server should run")
	}
	if o.Temperature < 0 || o.Temperature > 2 {
		return nil, fmt.Errorf("openai.temperature: %v is outside 0..2", o.Temperature)
	}
	if o.MaxTokens < 0 {
		return nil, fmt.Errorf("openai.max_tokens: %d is negative", o.MaxTokens)
	}
	var key string
	if o.APIKeyEnv != "" {
		getenv := env.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		if key = getenv(o.APIKeyEnv); key == "" {
			return nil, fmt.Errorf("openai.api_key_env: the environment variable %s is not set", o.APIKeyEnv)
		}
	}
	skills, err := agents.SkillsFromSpec(spec)
	if err != nil {
		return nil, err
	}
	if len(skills) == 0 {
		return nil, errors.New("skills: an openai agent needs at least one [[skills]] entry")
	}
	pl, err := newPlanner(spec, env, skills)
	if err != nil {
		return nil, err
	}
	prompts := make(map[string]string, len(skills))
	for _, ss := range spec.Skills {
		prompts[ss.ID] = ss.Prompt
	}

	hc := &http.Client{} // no timeout: the task's ctx bounds each call
	opts := []option.RequestOption{
		option.WithBaseURL(o.BaseURL),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(maxRetries),
		option.WithMiddleware(keepErrorBody),
	}
	if key != "" {
		opts = append(opts, option.WithAPIKey(key))
	}
	b := &backend{
		// The service, unlike openai.NewClient, reads nothing from the
		// environment (OPENAI_API_KEY, OPENAI_BASE_URL, ...): a key must not
		// reach a server it was not configured for.
		chat:        openai.NewChatCompletionService(opts...),
		http:        hc,
		model:       o.Model,
		persona:     o.Persona,
		temperature: o.Temperature,
		maxTokens:   o.MaxTokens,
		skills:      skills,
		prompts:     prompts,
		planner:     pl,
	}
	// A planner asks for JSON only when told to: a server that constrains
	// the output to JSON (Ollama's format) keeps models from calling tools.
	b.jsonMode.Store(o.JSONMode == nil && pl == nil || o.JSONMode != nil && *o.JSONMode)
	return b, nil
}

func (b *backend) Skills() []agents.Skill { return b.skills }

func (b *backend) Close() error {
	b.http.CloseIdleConnections()
	return nil
}

func (b *backend) Run(ctx context.Context, skill string, input json.RawMessage, progress agents.Progress) (json.RawMessage, error) {
	sk, ok := b.skill(skill)
	if !ok {
		return nil, agents.Errorf(agents.CodeUnknownSkill, "this agent has no skill %q", skill)
	}
	params := openai.ChatCompletionNewParams{
		Model: b.model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(systemPrompt(b.persona, sk, b.planner != nil)),
			openai.UserMessage(userPrompt(b.prompts[skill], input)),
		},
	}
	// Zero means "the server's default": the spec cannot tell an explicit 0
	// from an absent field.
	if b.temperature != 0 {
		params.Temperature = openai.Float(b.temperature)
	}
	if b.maxTokens > 0 {
		// max_tokens rather than max_completion_tokens: every
		// OpenAI-compatible server knows it.
		params.MaxTokens = openai.Int(int64(b.maxTokens))
	}
	if b.planner != nil {
		return b.plan(ctx, params, progress)
	}
	report(progress, "waiting for the model")
	res, err := b.send(ctx, params)
	if err != nil {
		return nil, err
	}
	return readAnswer(res)
}

// send asks for a JSON object while the server accepts response_format.
func (b *backend) send(ctx context.Context, params openai.ChatCompletionNewParams) (*openai.ChatCompletion, error) {
	jsonMode := b.jsonMode.Load()
	if jsonMode {
		params.ResponseFormat.OfJSONObject = &shared.ResponseFormatJSONObjectParam{}
	}
	res, status, err := b.complete(ctx, params)
	if jsonMode && status == http.StatusBadRequest {
		// Some servers reject response_format; ask once more without it,
		// and only stop asking if that worked (the 400 may have had another
		// cause).
		params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{}
		if res, _, err = b.complete(ctx, params); err == nil {
			b.jsonMode.Store(false)
		}
	}
	return res, err
}

func (b *backend) skill(id string) (agents.Skill, bool) {
	for _, s := range b.skills {
		if s.ID == id {
			return s, true
		}
	}
	return agents.Skill{}, false
}

// complete sends one chat completion. Failures are context errors or
// RunErrors; status is the HTTP status of a server error, or 0.
func (b *backend) complete(ctx context.Context, params openai.ChatCompletionNewParams) (_ *openai.ChatCompletion, status int, _ error) {
	rec := &errorRecord{}
	res, err := b.chat.New(context.WithValue(ctx, errorRecordKey{}, rec), params)
	if err == nil {
		return res, 0, nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, 0, fmt.Errorf("waiting for the model: %w", cerr)
	}
	var apiErr *openai.Error
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.StatusCode
		msg := apiErr.Message
		if msg == "" {
			msg = rec.body
		}
		return nil, status, serverError(status, msg)
	case rec.status != 0:
		// An error body the client could not read: plain text, or
		// {"error": "..."} as Ollama's native API has it.
		return nil, rec.status, serverError(rec.status, rec.body)
	default:
		return nil, 0, agents.Errorf(agents.CodeBackend, "the model server did not answer: %v", err)
	}
}

func serverError(status int, msg string) error {
	reason := fmt.Sprintf("the model server answered %d %s", status, http.StatusText(status))
	if m := strings.TrimSpace(msg); m != "" {
		reason += ": " + snippet(m, 300)
	}
	return &agents.RunError{Code: agents.CodeBackend, Reason: reason}
}

// errorRecord keeps the status and start of the last error response of one
// call, for servers whose error bodies the client cannot parse.
type errorRecord struct {
	status int
	body   string
}

type errorRecordKey struct{}

func keepErrorBody(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	rec, _ := req.Context().Value(errorRecordKey{}).(*errorRecord)
	if err != nil || rec == nil || res.StatusCode < 400 {
		return res, err
	}
	peek, _ := io.ReadAll(io.LimitReader(res.Body, errBodyPeek))
	rec.status, rec.body = res.StatusCode, string(peek)
	res.Body = readCloser{io.MultiReader(bytes.NewReader(peek), res.Body), res.Body}
	return res, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// readAnswer takes the JSON out of the first choice.
func readAnswer(res *openai.ChatCompletion) (json.RawMessage, error) {
	if len(res.Choices) == 0 {
		return nil, agents.Errorf(agents.CodeInvalidOutput, "the model returned no answer")
	}
	ch := res.Choices[0]
	if ch.Message.Refusal != "" && ch.Message.Content == "" {
		return nil, agents.Errorf(agents.CodeInvalidOutput, "the model refused: %s", snippet(ch.Message.Refusal, 200))
	}
	out, err := parseAnswer(ch.Message.Content)
	if err != nil {
		reason := "the model's answer is not JSON"
		if ch.FinishReason == "length" {
			reason += " (it was cut off at max_tokens)"
		}
		return nil, &agents.RunError{Code: agents.CodeInvalidOutput, Reason: reason + ": " + strconv.Quote(snippet(ch.Message.Content, 200))}
	}
	return out, nil
}
