package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
)

func newRunCmd(g *globals) *cobra.Command {
	var input string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "run FLOW.yaml",
		Short: "Run a workflow: its steps run as tasks, here or on members' nodes, independent ones in parallel",
		Long: "Run a workflow file (docs/workflows.md). The node checks the whole file first — references, cycles,\n" +
			"expressions, skills — and runs nothing if anything is wrong. The exit code is 0 only when it completed.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			flow, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			in, c, ctx, done, err := g.longCall(cmd, input, timeout)
			if err != nil {
				return err
			}
			defer done()
			if !g.json {
				go followWorkflow(ctx, c, cmd)
			}
			res, err := c.RunWorkflow(ctx, api.WorkflowRun{Name: filepath.Base(args[0]), Flow: string(flow),
				Input: json.RawMessage(in), TimeoutMS: timeout.Milliseconds()})
			if err != nil {
				return err
			}
			if g.json {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				rows := [][]string{}
				for _, s := range res.Steps {
					rows = append(rows, []string{s.ID, s.Skill, s.Status, shortID(s.Executor), fmt.Sprintf("%d ms", s.DurationMS), s.Error})
				}
				table(w, []string{"STEP", "SKILL", "STATUS", "EXECUTOR", "DURATION", ""}, rows)
				fmt.Fprintf(w, "\nworkflow %s", res.Status)
				if res.Error != "" {
					fmt.Fprintf(w, ": %s", res.Error)
				}
				fmt.Fprintln(w)
				if len(res.Output) > 0 {
					var v any
					if json.Unmarshal(res.Output, &v) == nil {
						_ = printJSON(w, v)
					}
				}
			}
			if res.Status != "completed" {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "{}", "the workflow's input, JSON or @FILE")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

// followWorkflow prints each step as it starts and ends (human mode, best
// effort).
func followWorkflow(ctx context.Context, c *client.Client, cmd *cobra.Command) {
	_ = c.Events(ctx, 0, func(e api.Event) error {
		if e.Type != "workflow.step" {
			return nil
		}
		m, _ := e.Data.(map[string]any)
		st, _ := m["step"].(map[string]any)
		if st == nil {
			return nil
		}
		line := fmt.Sprintf("  [%v/%v] %v %v", m["done"], m["total"], st["id"], st["status"])
		if ex, _ := st["executor"].(string); ex != "" {
			line += " on " + shortID(ex)
		}
		if msg, _ := st["error"].(string); msg != "" {
			line += ": " + msg
		}
		fmt.Fprintln(cmd.ErrOrStderr(), line)
		return nil
	})
}
