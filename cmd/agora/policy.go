package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
)

func newPolicyCmd(g *globals) *cobra.Command {
	var communityID string
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show the community policy its votes decided (`policy local`: this node's data-exit policy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.PolicyView, error) {
				return c.Policy(ctx, communityID)
			}, printGovPolicy)
		},
	}
	cmd.Flags().StringVar(&communityID, "community", "", "community ID (default: the node's only community)")
	cmd.AddCommand(newPolicyKeysCmd(g), &cobra.Command{
		Use:   "local",
		Short: "The data-exit policy: where the subtasks each agent starts may send their input",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, (*client.Client).LocalPolicy, printPolicy)
		},
	})
	return cmd
}

func printPolicy(w io.Writer, ps []api.ExitPolicy) error {
	rows := [][]string{}
	for _, p := range ps {
		where := p.Delegate
		if len(p.Peers) > 0 {
			where += ": " + strings.Join(p.Peers, ", ")
		}
		var per []string
		for skill, rule := range p.Skills {
			per = append(per, skill+" → "+rule)
		}
		sort.Strings(per)
		rows = append(rows, []string{p.Agent, where, orNone(per), p.Rule})
	}
	table(w, []string{"AGENT", "SUBTASKS GO TO", "PER SKILL", "BECAUSE"}, rows)
	_, err := fmt.Fprintln(w, "\nTasks you start yourself (agora ask, agora run, MCP) may use any member. Set [exit] in an agent file to change an agent's rule.")
	return err
}
