// Package workflow runs workflows: a YAML (or JSON) file naming steps, each
// a skill whose input is built with jq from the workflow's input and the
// outputs of earlier steps. See docs/workflows.md.
//
// Parse reads a file and checks its structure; Plan compiles the jq
// expressions, finds each step's dependencies in them and orders the
// steps, refusing cycles and unknown references before anything runs; Run
// executes a planned workflow through an agents.Delegator, independent
// steps in parallel. Factory installs a workflow as the one skill of an
// agent (backend "workflow").
//
// The package never reaches the network or the journal itself: every step
// is a subtask of the Delegator, which applies the node's ranking,
// receipts and the agent's data-exit policy.
package workflow
