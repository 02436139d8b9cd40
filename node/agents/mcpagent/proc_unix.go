//go:build unix

package mcpagent

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the server in a process group of its own, so that killGroup
// also reaches what it started.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills what is left of the server's process group.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
