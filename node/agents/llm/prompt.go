package llm

import (
	"encoding/json"
	"strings"

	"github.com/agora-p2p/agora/node/agents"
)

// systemPrompt is the persona followed by what the skill expects back (and,
// for a planner, that it may call tools first). The word JSON must appear in
// the messages: OpenAI rejects json_object mode otherwise.
func systemPrompt(persona string, sk agents.Skill, planner bool) string {
	var b strings.Builder
	if p := strings.TrimSpace(persona); p != "" {
		b.WriteString(p)
		b.WriteString("\n\n")
	}
	b.WriteString("Task: ")
	b.WriteString(sk.ID)
	if d := strings.TrimSpace(sk.Description); d != "" {
		b.WriteString(" - ")
		b.WriteString(d)
	}
	if planner {
		b.WriteString("\nYou may call the functions you are given; each runs a skill of your community and returns its output as JSON. When you have what you need, answer")
	} else {
		b.WriteString("\nAnswer")
	}
	b.WriteString(" with one JSON object matching this JSON Schema, and nothing else:\n")
	b.Write(sk.Output)
	return b.String()
}

// userPrompt fills the skill's template with the input JSON; without a
// template the input JSON is the message.
func userPrompt(template string, input json.RawMessage) string {
	if strings.TrimSpace(template) == "" {
		return string(input)
	}
	return strings.ReplaceAll(template, "{{input}}", string(input))
}
