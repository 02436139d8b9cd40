package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the benchmarks ran.
type Machine struct {
	CPU       string // model name from /proc/cpuinfo
	GoCPU     string // the CPU as go test's benchmark output names it
	Cores     int
	MemGiB    float64
	Kernel    string
	GoVersion string // of the go command that ran the benchmarks
	OSArch    string
	Start     time.Time
	End       time.Time
	LoadStart string // /proc/loadavg's three averages
	LoadEnd   string
	LoadMax   float64 // the highest 1-minute average seen between jobs
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, Start: time.Now().UTC()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemGiB = kb / (1 << 20)
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(data))
	}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	} else {
		m.GoVersion = runtime.Version()
	}
	m.LoadStart = loadAvg()
	m.LoadMax = load1(m.LoadStart)
	return m
}

// loadAvg is the 1, 5 and 15-minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func load1(avg string) float64 {
	f := strings.Fields(avg)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func (m Machine) String() string {
	cpu := orUnknown(m.CPU)
	if m.GoCPU != "" && m.GoCPU != m.CPU {
		cpu += fmt.Sprintf(" (%s, as Go names it)", m.GoCPU)
	}
	return fmt.Sprintf("%s, %d cores, %.1f GiB RAM, %s, %s %s", cpu, m.Cores, m.MemGiB, orUnknown(m.Kernel), m.GoVersion, m.OSArch)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
