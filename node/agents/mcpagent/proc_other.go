//go:build !unix

package mcpagent

import "os/exec"

func ownGroup(*exec.Cmd) {}

func killGroup(int) {}
