// Package llm is the "openai" agent backend: each skill is one chat
// completion against an OpenAI-compatible endpoint (Ollama, llama.cpp
// server, vLLM, LM Studio, OpenAI). The agent's persona is the system
// prompt; the skill's prompt template, filled with the input JSON, is the
// user message; the model's answer must be one JSON value.
//
// With openai.delegate the agent is a planner: the skills of the node and
// its communities are the model's function tools, and each call runs as a
// subtask through agents.Env.Delegator, bounded by max_tool_calls and the
// task's ctx (planner.go).
//
// It owns the requests it sends and the reading of the answers. It does not
// validate a task's input or output against the skill's schemas (the
// Manager does), choose providers for subtasks (the Delegator does), keep
// state between tasks, or stream. It reads no environment but the variable
// named by api_key_env, through agents.Env.
package llm
