package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Policies this node enforces",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "local",
		Short: "The data-exit policy: where the subtasks each agent starts may send their input",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ps, err := c.LocalPolicy(ctx)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), ps)
			}
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
			table(cmd.OutOrStdout(), []string{"AGENT", "SUBTASKS GO TO", "PER SKILL", "BECAUSE"}, rows)
			fmt.Fprintln(cmd.OutOrStdout(), "\nTasks you start yourself (agora ask) may use any member. Set [exit] in an agent file to change an agent's rule.")
			return nil
		},
	})
	return cmd
}
