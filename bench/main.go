//go:build linux

// Command bench measures llmslots against a baseline that reproduces the
// reference implementation (create-exclusive + flock, first line pid=N,
// delete on release, a fixed 100 ms poll, no queue), side by side in one
// run, with real worker processes measured from outside:
//
//	go run ./bench            # every workload, 3 runs each, medians
//	go run ./bench -quick     # one short run of each, as CI does
//
// Workloads: uncontended acquire+release (and the floor: bare
// create-exclusive + flock + unlink + close); saturated (8 processes,
// max 2, hold 10 ms, think 0-20 ms: utilization, handoff latency, FIFO
// inversions, spread of waiting); idle (20 waiters blocked: CPU and
// wake-ups per waiter-second); scale (cost per acquire as waiters and
// slots grow); throttle (20 processes against a simulated provider whose
// concurrency limit changes: fixed max against the adaptive limit).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	flagDir   = flag.String("dir", "", "directory for the pools (default: /dev/shm if it is tmpfs, else the temp dir)")
	flagRuns  = flag.Int("runs", 3, "runs of each timed workload; medians are reported")
	flagQuick = flag.Bool("quick", false, "one short run of each workload (for CI)")
	flagOnly  = flag.String("only", "", "comma-separated workloads to run: uncontended,saturated,idle,scale,many,throttle")
	flagStrat = flag.String("strategies", "", "comma-separated strategies the scale workload runs (default all: floor,fairfloor,llmslots,portable,reference); bench/ab.sh runs llmslots alone")
)

func main() {
	if os.Getenv(workerEnv) != "" {
		os.Exit(runWorker())
	}
	flag.Parse()
	if *flagQuick {
		*flagRuns = 1
	}
	if *flagRuns < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		os.Exit(64)
	}
	root, err := benchRoot(*flagDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(root)
	printMachine(root)
	want := func(name string) bool {
		return *flagOnly == "" || strings.Contains(","+*flagOnly+",", ","+name+",")
	}
	steps := []struct {
		name string
		run  func(root string) error
	}{
		{"uncontended", uncontended},
		{"saturated", saturated},
		{"idle", idle},
		{"scale", scale},
		{"many", manyHolders},
		{"throttle", throttle},
	}
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		if err := s.run(root); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, err)
			os.Exit(1)
		}
	}
}

// benchRoot makes a private directory for the run's pools, on tmpfs when
// it can (where the default $XDG_RUNTIME_DIR lives on most machines).
func benchRoot(dir string) (string, error) {
	if dir == "" {
		dir = os.TempDir()
		var st unix.Statfs_t
		if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
			dir = "/dev/shm"
		}
	}
	return os.MkdirTemp(dir, "llmslots-bench-")
}

func printMachine(root string) {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	fs := "unknown"
	var st unix.Statfs_t
	if unix.Statfs(root, &st) == nil {
		switch st.Type {
		case unix.TMPFS_MAGIC:
			fs = "tmpfs"
		case unix.EXT4_SUPER_MAGIC:
			fs = "ext4"
		default:
			fs = fmt.Sprintf("0x%x", st.Type)
		}
	}
	fmt.Printf("machine: %d CPUs (%s), %s %s, %s; pools on %s (%s); %d run(s) per timed workload\n",
		runtime.NumCPU(), model, unix.ByteSliceToString(uts.Sysname[:]), unix.ByteSliceToString(uts.Release[:]),
		runtime.Version(), filepath.Dir(root), fs, *flagRuns)
}
