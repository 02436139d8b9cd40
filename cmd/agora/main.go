// Command agora is the Agora node and its command-line client. Every command
// but init, daemon, up, config and demo is a thin client of the running
// daemon's local HTTP API.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	root := newRoot()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	repo string
	api  string
	json bool
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "agora",
		Short:         "Agora: a peer-to-peer network of personal AI agents",
		Long:          "Agora runs your own AI agents at home and shares their skills with communities you trust.\n\nStart with `agora up` (or try `agora demo`).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.repo, "repo", "", "node repo directory (env AGORA_REPO, default ~/.agora)")
	root.PersistentFlags().StringVar(&g.api, "api", "", "address of the local API, host:port (default: read from the repo)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	root.AddCommand(
		newInitCmd(g), newDaemonCmd(g, false), newDaemonCmd(g, true),
		newIDCmd(g), newStatusCmd(g), newPeersCmd(g), newNetcheckCmd(g),
		newCommunityCmd(g), newConfigCmd(g), newDemoCmd(g), newVersionCmd(g),
		newAttestCmd(g), newRevokeCmd(g), newRecordsCmd(g), newRecordCmd(g),
		newAgentsCmd(g), newSkillsCmd(g), newAskCmd(g), newTasksCmd(g), newTaskCmd(g), newCancelCmd(g),
		newPolicyCmd(g), newMCPCmd(g), newRunCmd(g),
		newRateCmd(g), newTrustCmd(g), newRepCmd(g), newCertsCmd(g), newUICmd(g),
		newProposeCmd(g), newProposalsCmd(g), newVoteCmd(g), newTallyCmd(g),
	)
	return root
}
