package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/client"
)

func newAgentsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List this node's agents; add, remove, enable or disable one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, (*client.Client).Agents, printAgents)
		},
	}
	var replace bool
	add := &cobra.Command{
		Use:   "add FILE",
		Short: "Add an agent from its TOML file (checked, started, then saved in the repo)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			a, err := c.AddAgent(ctx, api.AddAgentRequest{TOML: string(data), Replace: replace})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added agent %s with %d skills.\n", a.Name, len(a.Skills))
			return nil
		},
	}
	add.Flags().BoolVar(&replace, "replace", false, "replace an agent of the same name")
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop an agent and delete its file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, g, func(c *client.Client, ctx context.Context) (map[string]string, error) {
				return map[string]string{"removed": args[0]}, c.RemoveAgent(ctx, args[0])
			}, func(w io.Writer, _ map[string]string) error {
				_, err := fmt.Fprintf(w, "Removed agent %s.\n", args[0])
				return err
			})
		},
	}
	toggle := func(enable bool) *cobra.Command {
		use, short := "disable NAME", "Stop an agent but keep its file"
		if enable {
			use, short = "enable NAME", "Start a disabled agent"
		}
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return query(cmd, g, func(c *client.Client, ctx context.Context) (api.Agent, error) {
					return c.EnableAgent(ctx, args[0], enable)
				}, func(w io.Writer, a api.Agent) error {
					state := "disabled"
					if a.Enabled {
						state = "enabled"
					}
					_, err := fmt.Fprintf(w, "Agent %s is %s.\n", a.Name, state)
					return err
				})
			},
		}
	}
	cmd.AddCommand(add, remove, toggle(true), toggle(false))
	return cmd
}

func newSkillsCmd(g *globals) *cobra.Command {
	var skill, community string
	cmd := &cobra.Command{
		Use:   "skills",
		Short: "List the skills members offer, with their providers best first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, func(c *client.Client, ctx context.Context) ([]api.SkillOffer, error) {
				return c.Skills(ctx, community, skill)
			}, printSkills)
		},
	}
	cmd.Flags().StringVar(&skill, "skill", "", "only this skill")
	cmd.Flags().StringVar(&community, "community", "", "only this community (default: all the node is in)")
	return cmd
}

func printSkills(w io.Writer, out []api.SkillOffer) error {
	if len(out) == 0 {
		fmt.Fprintln(w, "No skills advertised yet.")
		return nil
	}
	rows := [][]string{}
	for _, s := range out {
		for _, p := range s.Providers {
			who := shortID(p.PeerID)
			if p.Self {
				who += " (this node)"
			}
			lat := "-"
			if p.LatencyMS > 0 {
				lat = fmt.Sprintf("%.0f ms", p.LatencyMS)
			}
			certified := ""
			if p.Certified {
				certified = "✓"
			}
			rows = append(rows, []string{s.Skill, who, p.Agent, lat,
				fmt.Sprintf("%.0f%%", 100*p.SuccessRate), fmt.Sprintf("%.0f%%", 100*p.Load),
				strconv.FormatInt(p.Trust, 10), certified})
		}
	}
	table(w, []string{"SKILL", "PROVIDER", "AGENT", "LATENCY", "SUCCESS", "LOAD", "TRUST", "CERTIFIED"}, rows)
	return nil
}

func newAskCmd(g *globals) *cobra.Command {
	var input, peerID, community string
	var remote, certified bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ask SKILL",
		Short: "Run a skill, on this node or delegated to the best member offering it",
		Long: "Run a skill with a JSON input. Without --peer, a local agent runs it if it has the skill,\n" +
			"else the best-ranked member; a failed or refused task moves on to the next provider.\n" +
			"The exit code is 0 only when the task completed.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, c, ctx, done, err := g.longCall(cmd, input, timeout)
			if err != nil {
				return err
			}
			defer done()
			if !g.json {
				go followTask(ctx, c, cmd)
			}
			t, err := c.SubmitTask(ctx, api.TaskRequest{Skill: args[0], Input: json.RawMessage(in), Community: community,
				Peer: peerID, Remote: remote, CertifiedOnly: certified, TimeoutMS: timeout.Milliseconds(), Wait: true})
			if err != nil {
				return err
			}
			if g.json {
				if err := printJSON(cmd.OutOrStdout(), t); err != nil {
					return err
				}
			} else {
				printTaskEnd(cmd, t)
			}
			if t.Status != "completed" {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "{}", "the input, JSON or @FILE")
	cmd.Flags().StringVar(&peerID, "peer", "", "only this provider (a peer ID; this node's own ID runs it here)")
	cmd.Flags().BoolVar(&remote, "remote", false, "never run it on this node")
	cmd.Flags().BoolVar(&certified, "certified", false, "only providers whose agent or node the community certified")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	cmd.Flags().StringVar(&community, "community", "", "community ID (default: the node's only community)")
	return cmd
}

// followTask prints the progress of the tasks the daemon runs while ask
// waits (human mode only; best effort).
func followTask(ctx context.Context, c *client.Client, cmd *cobra.Command) {
	_ = c.Events(ctx, 0, func(e api.Event) error {
		if e.Type != "task.updated" {
			return nil
		}
		m, _ := e.Data.(map[string]any)
		ev, _ := m["event"].(map[string]any)
		if m["role"] != "requester" || ev == nil {
			return nil
		}
		line := fmt.Sprintf("  %v", ev["type"])
		if p, _ := ev["peer"].(string); p != "" {
			line += " " + shortID(p)
		}
		if msg, _ := ev["message"].(string); msg != "" {
			line += ": " + msg
		}
		fmt.Fprintln(cmd.ErrOrStderr(), line)
		return nil
	})
}

func printTaskEnd(cmd *cobra.Command, t api.Task) {
	w := cmd.OutOrStdout()
	fields(w, "task", t.ID, "status", t.Status, "skill", t.Skill, "executor", t.Executor, "agent", t.Agent,
		"duration", fmt.Sprintf("%d ms", t.DurationMS))
	if t.Error != "" {
		fields(w, "error", t.Code+": "+t.Error)
	}
	if t.Receipt != nil {
		fields(w, "receipt", t.Receipt.CID+" (signed by the executor, verified)")
	}
	if len(t.Output) > 0 {
		fmt.Fprintln(w)
		var v any
		if json.Unmarshal(t.Output, &v) == nil {
			_ = printJSON(w, v)
		}
	}
}

func newTasksCmd(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List tasks, newest first: those this node asked for and those it ran for others",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd, g, func(c *client.Client, ctx context.Context) ([]api.Task, error) {
				return c.Tasks(ctx, limit)
			}, func(w io.Writer, ts []api.Task) error {
				if len(ts) == 0 {
					fmt.Fprintln(w, "No tasks yet. Try `agora ask text.stats --input '{\"text\":\"hello\"}'`.")
					return nil
				}
				rows := [][]string{}
				for _, t := range ts {
					rows = append(rows, []string{t.ID, t.Role, t.Skill, t.Status, shortID(t.Executor),
						time.UnixMilli(t.Created).Format(time.DateTime), fmt.Sprintf("%d ms", t.DurationMS)})
				}
				table(w, []string{"TASK", "ROLE", "SKILL", "STATUS", "EXECUTOR", "CREATED", "DURATION"}, rows)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	return cmd
}

func newTaskCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "task ID",
		Short: "Show one task with its events and receipt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			t, err := c.Task(ctx, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), t)
			}
			w := cmd.OutOrStdout()
			for _, e := range t.Events {
				line := []string{time.UnixMilli(e.Time).Format("15:04:05.000"), e.Type}
				if e.Peer != "" {
					line = append(line, shortID(e.Peer))
				}
				if e.Agent != "" {
					line = append(line, "agent "+e.Agent)
				}
				if e.Code != "" {
					line = append(line, e.Code)
				}
				if e.Message != "" {
					line = append(line, e.Message)
				}
				fmt.Fprintln(w, strings.Join(line, "  "))
			}
			fmt.Fprintln(w)
			printTaskEnd(cmd, t)
			if len(t.Children) > 0 {
				fmt.Fprintln(w, "\nsubtasks:")
				printTree(ctx, c, w, t.Children, "  ", 0)
			}
			return nil
		},
	}
}

// printTree prints subtasks and, below each, its own subtasks.
func printTree(ctx context.Context, c *client.Client, w io.Writer, ts []api.Task, indent string, depth int) {
	for _, t := range ts {
		fmt.Fprintf(w, "%s%s  %s  %s  on %s  %d ms\n", indent, t.ID, t.Skill, t.Status, shortID(t.Executor), t.DurationMS)
		if depth >= 8 {
			continue
		}
		if full, err := c.Task(ctx, t.ID); err == nil && len(full.Children) > 0 {
			printTree(ctx, c, w, full.Children, indent+"  ", depth+1)
		}
	}
}

func newCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a running task (the executor is told and stops it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd, g, func(c *client.Client, ctx context.Context) (api.Task, error) {
				return c.CancelTask(ctx, args[0])
			}, func(w io.Writer, t api.Task) error {
				_, err := fmt.Fprintf(w, "Task %s is %s.\n", t.ID, t.Status)
				return err
			})
		},
	}
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func printAgents(w io.Writer, as []api.Agent) error {
	if len(as) == 0 {
		fmt.Fprintln(w, "No agents. Add one with `agora agents add FILE` (see docs/agents.md).")
		return nil
	}
	rows := [][]string{}
	for _, a := range as {
		state := "enabled"
		switch {
		case !a.Enabled:
			state = "disabled"
		case a.Error != "":
			state = "error: " + a.Error
		}
		share := "private"
		if a.Shared {
			share = "community"
		}
		var ids []string
		for _, s := range a.Skills {
			ids = append(ids, s.ID)
		}
		rows = append(rows, []string{a.Name, a.Backend, state, share, orNone(ids)})
	}
	table(w, []string{"NAME", "BACKEND", "STATE", "SHARING", "SKILLS"}, rows)
	return nil
}
