package llmslots

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/llmslots/llmslots/internal/sysinfo"
)

// workerMemory is the memory DefaultMaxConcurrency budgets for each slot
// holder: a `codex exec` or `claude -p` subprocess and its tools.
const workerMemory = 350 << 20

// defaultCap bounds the computed default however large the machine.
const defaultCap = 16

// Concurrency explains a DefaultMaxConcurrency answer.
type Concurrency struct {
	Max      int    `json:"max"`                 // the answer: at least 1
	Source   string `json:"source"`              // "LLMSLOTS_MAX" when the variable decided, else "computed"
	EnvError string `json:"env_error,omitempty"` // why a set LLMSLOTS_MAX was ignored
	CPUs     int    `json:"cpus"`                // the CPUs this process may run on, lowered by a cgroup CPU quota
	CPULimit string `json:"cpu_limit,omitempty"` // the cgroup CPU quota that lowered CPUs, if any
	// MemAvailable is the memory available to new work, in bytes: the least
	// of /proc/meminfo's MemAvailable and what the cgroup limits leave.
	MemAvailable uint64 `json:"mem_available_bytes"`
	MemKnown     bool   `json:"mem_known"`           // false where memory could not be read: then it limits nothing
	MemLimit     string `json:"mem_limit,omitempty"` // the cgroup memory limit that lowered MemAvailable, if any
	// WorkerMemory is the memory budgeted for each slot holder, in bytes:
	// a `codex exec` or `claude -p` subprocess and its tools.
	WorkerMemory uint64 `json:"worker_memory_bytes"`
	ByMemory     int    `json:"by_memory"` // MemAvailable / WorkerMemory
}

// DefaultMaxConcurrency returns a sensible max for a pool of LLM
// subprocesses on this machine: LLMSLOTS_MAX if it holds an integer
// 1..MaxSlots (another value is logged and ignored); else min(CPUs
// available, available memory / 350 MiB, 16), at least 1. CPUs honour the
// cgroup CPU quota and memory the cgroup memory limits (v1 and v2), so the
// answer inside a container is the container's. ExplainMaxConcurrency
// shows how the answer was reached.
func DefaultMaxConcurrency() int {
	return ExplainMaxConcurrency().Max
}

// ExplainMaxConcurrency returns DefaultMaxConcurrency's answer and its figures.
func ExplainMaxConcurrency() Concurrency {
	c := measureConcurrency(sysinfo.Root{}, os.Getenv(EnvMax))
	if c.EnvError != "" {
		packageLogger().Warn("llmslots: " + c.EnvError)
	}
	return c
}

// measureConcurrency computes the default from root's files and LLMSLOTS_MAX.
func measureConcurrency(root sysinfo.Root, env string) Concurrency {
	c := Concurrency{Source: "computed", CPUs: runtime.NumCPU(), WorkerMemory: workerMemory}
	if quota, desc := root.CPUQuota(); quota > 0 && quota < c.CPUs {
		c.CPUs, c.CPULimit = quota, desc
	}
	c.MemAvailable, c.MemLimit, c.MemKnown = root.MemAvailable()
	c.Max = min(c.CPUs, defaultCap)
	if c.MemKnown {
		c.ByMemory = int(min(c.MemAvailable/workerMemory, uint64(MaxSlots)))
		c.Max = min(c.Max, c.ByMemory)
	}
	c.Max = max(c.Max, 1)
	if env != "" {
		n, err := strconv.Atoi(strings.TrimSpace(env))
		if err != nil || n < 1 || n > MaxSlots {
			c.EnvError = EnvMax + " must be an integer 1.." + strconv.Itoa(MaxSlots) + "; ignoring " + strconv.Quote(env)
		} else {
			c.Max, c.Source = n, EnvMax
		}
	}
	return c
}
