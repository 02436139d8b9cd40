// Package llm is the "openai" agent backend: each skill is one chat
// completion against an OpenAI-compatible endpoint (Ollama, llama.cpp
// server, vLLM, LM Studio, OpenAI). The agent's persona is the system
// prompt; the skill's prompt template, filled with the input JSON, is the
// user message; the model's answer must be one JSON value.
//
// It owns the request it sends and the reading of the answer. It does not
// validate input or output against the skill's schemas (the Manager does),
// keep conversation state, stream, or call tools. It reads no environment
// but the variable named by api_key_env, through agents.Env.
package llm
