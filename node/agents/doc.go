// Package agents owns a node's agents: the agent files in repo/agents
// (ParseSpec), the backends that run their skills (builtin and exec here;
// openai and mcp in subpackages, all behind Backend and Factory), and the
// Manager, which loads, adds, removes, enables and disables agents without
// a restart and runs skills within each agent's limits: input size and
// schema, concurrency, timeout, output size and schema.
//
// It knows nothing of the network: the task protocol admits and runs
// remote tasks through Manager.Check, TryAcquire and RunAcquired, and the
// adverts follow Manager.Subscribe. Skill schemas are JSON Schemas that
// may never load anything from files or the network; skill input from
// peers is untrusted and every error it causes is a *RunError with a code.
//
// The node never rewrites agent files: which agents are disabled is kept
// in the directory's .state.json.
package agents
