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
// inversions, spread of waiting); idle (20 waiters blocked behind max 4
// and max 64 holders: CPU and wake-ups per waiter-second); reclaim (a
// holder killed while a waiter is blocked: kill to acquisition); scale
// (cost per acquire as waiters and slots grow, beside two floors); many
// (an acquire past 512 held slots of 1024); throttle (20 processes against
// a simulated provider whose concurrency limit changes: fixed max against
// the adaptive limit). At the end it prints issue #20's targets, each
// against what this run measured.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	flagDir   = flag.String("dir", "", "directory for the pools (default: /dev/shm if it is tmpfs, else the temp dir)")
	flagRuns  = flag.Int("runs", 3, "runs of each timed workload; medians are reported")
	flagQuick = flag.Bool("quick", false, "one short run of each workload (for CI)")
	flagOnly  = flag.String("only", "", "comma-separated workloads to run: uncontended,saturated,idle,reclaim,scale,many,throttle")
	flagStrat = flag.String("strategies", "", "comma-separated strategies the scale workload runs (default all: floor,fairfloor,llmslots,reference); bench/ab.sh runs llmslots alone")
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
	// BENCH_PROFILE=DIR: this process's CPU profile (the in-process
	// workloads: uncontended, many) to DIR/cpu-bench-PID; each worker
	// writes its own (see runWorker).
	if dir := os.Getenv("BENCH_PROFILE"); dir != "" {
		if f, err := os.Create(filepath.Join(dir, "cpu-bench-"+strconv.Itoa(os.Getpid()))); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
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
		{"reclaim", reclaim},
		{"scale", scale},
		{"many", manyHolders},
		{"throttle", throttle},
	}
	var took []string
	begin := time.Now()
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		t0 := time.Now()
		if err := s.run(root); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, err)
			os.Exit(1)
		}
		took = append(took, fmt.Sprintf("%s %v", s.name, time.Since(t0).Round(time.Second)))
	}
	printTargets()
	fmt.Printf("\ntook %v: %s\n", time.Since(begin).Round(time.Second), strings.Join(took, ", "))
}

// A target is one of issue #20's or #21's, beside what this run measured.
type target struct {
	name, measured string
	met            bool
}

var targets []target

// check records a target, met or not, with what was measured.
func check(name string, met bool, format string, args ...any) {
	targets = append(targets, target{name, fmt.Sprintf(format, args...), met})
}

// printTargets prints the targets of the workloads that ran.
func printTargets() {
	if len(targets) == 0 {
		return
	}
	how := fmt.Sprintf("medians of %d runs", *flagRuns)
	if *flagQuick {
		how = "quick run: one short run of each, fewer rows, indicative only"
	}
	fmt.Printf("\n## targets of issues #20 and #21 (%s)\n", how)
	fmt.Printf("| %-64s | %-36s | %-4s |\n|---|---|---|\n", "target", "measured", "met?")
	missed := 0
	for _, t := range targets {
		met := "yes"
		if !t.met {
			met = "NO"
			missed++
		}
		fmt.Printf("| %-64s | %-36s | %-4s |\n", t.name, t.measured, met)
	}
	fmt.Printf("%d of %d targets met\n", len(targets)-missed, len(targets))
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
