package agents

import (
	"fmt"
	"slices"
)

// Exit is the data-exit rule that applies to one subtask: where its input
// may go.
type Exit struct {
	Mode  string   // ExitNever, ExitCommunity or ExitPeers
	Peers []string // for ExitPeers
	// Rule names the rule that decided, for people: e.g.
	// `agent "notes" exit.skills."text.summarize" = "never"`.
	Rule string
}

// AllowsPeer reports whether the input may go to peer (a peer ID string);
// this node itself is always allowed.
func (e Exit) AllowsPeer(peerID string, self bool) bool {
	switch {
	case self:
		return true
	case e.Mode == ExitNever:
		return false
	case e.Mode == ExitPeers:
		return slices.Contains(e.Peers, peerID)
	}
	return true
}

// ResolveExit is the data-exit rule for a subtask of skill started by the
// agent origin (a pure function of the agent's policy): the agent's
// exit.skills entry for the skill, else its exit.delegate, else the default
// — "never" for a private agent (its inputs never leave the node), else
// "community". A subtask the owner starts (origin "") may go anywhere.
func ResolveExit(origin string, private bool, e ExitSpec, skill string) Exit {
	if origin == "" {
		return Exit{Mode: ExitCommunity, Rule: "the owner's own tasks may use any member"}
	}
	if rule, ok := e.Skills[skill]; ok {
		mode, peers, err := ParseExitRule(rule)
		if err == nil {
			return Exit{Mode: mode, Peers: peers, Rule: fmt.Sprintf("agent %q exit.skills.%q = %q", origin, skill, rule)}
		}
	}
	if e.Delegate != "" {
		mode, peers, err := ParseExitRule(e.Delegate)
		if err == nil {
			if mode == ExitPeers && len(peers) == 0 {
				peers = e.Peers
			}
			return Exit{Mode: mode, Peers: peers, Rule: fmt.Sprintf("agent %q exit.delegate = %q", origin, e.Delegate)}
		}
	}
	if private {
		return Exit{Mode: ExitNever, Rule: fmt.Sprintf("agent %q is private (sharing.mode = \"private\"), so its inputs never leave this node", origin)}
	}
	return Exit{Mode: ExitCommunity, Rule: fmt.Sprintf("agent %q has no exit rule; a shared agent may use any member", origin)}
}
