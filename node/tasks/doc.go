// Package tasks runs delegation (DESIGN.md §6, docs/protocol.md §11): the
// executor that serves /agora/task/1.0.0 for this node's agents, the
// requester that sends a task to the best provider and retries on the next,
// and the journal that keeps every task, local or remote, with its events
// in badger.
package tasks
