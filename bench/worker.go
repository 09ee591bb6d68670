//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
	"golang.org/x/sys/unix"
)

// Workers are this binary re-executed with workerEnv set; their settings
// come in environment variables, their reports go to stdout.
const workerEnv = "LLMSLOTS_BENCH_WORKER"

// A strategy takes a slot of max in dir within wait; release frees it.
type strategy func(dir string, max int, wait time.Duration) (release func(), slot int, err error)

var strategies = map[string]strategy{
	"llmslots":  librarySlot,
	"reference": referenceSlot,
	"floor":     floorSlot,
	"fairfloor": fairFloorSlot,
}

// floorSlot is the least a cross-process handoff can cost here: one
// process blocked in flock on a file, woken by the kernel when another
// lets go, holding it at once. Each worker waits on file pid%max, so a
// handoff is exactly one blocked process woken; there is no queue, no
// fairness across files and no crash handling: a floor, not a semaphore.
func floorSlot(dir string, max int, wait time.Duration) (func(), int, error) {
	id := os.Getpid() % max
	f, err := os.OpenFile(filepath.Join(dir, "floor-"+strconv.Itoa(id)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, 0, err
	}
	return func() { f.Close() }, id, nil
}

// fairFloorSlot is the least a fair handoff can cost here: the workers
// form a ring of named pipes round which max tokens go, each worker
// handing its token to the one max places on, which is the order a
// first-in, first-out line gives workers that all hold for the same time.
// A handoff wakes exactly one blocked process, as floorSlot's does, but
// flock there wakes every process blocked on the file, and here nobody
// waits on anybody but the one before. No file is made, no line read,
// and a token dies with its holder: a floor, not a semaphore.
func fairFloorSlot(dir string, max int, wait time.Duration) (func(), int, error) {
	if ring.own == nil {
		i, n := envInt("BENCH_INDEX"), envInt("BENCH_PROCS")
		if n <= 0 || i < 0 || i >= n {
			return nil, 0, fmt.Errorf("fairfloor: BENCH_INDEX %d of BENCH_PROCS %d", i, n)
		}
		var err error
		if ring.own, err = openFIFO(dir, i); err != nil {
			return nil, 0, err
		}
		if ring.next, err = openFIFO(dir, (i+max)%n); err != nil {
			return nil, 0, err
		}
		if i < max {
			ring.own.Write([]byte{1}) // the tokens start with the first max workers
		}
		// A worker whose predecessor has stopped gets no more tokens:
		// it stops too, just after the run's end.
		ring.stop = time.Now().Add(time.Duration(int64(envInt("BENCH_END"))-monotonic()) + 200*time.Millisecond)
		ring.slot = i % max
	}
	ring.own.SetReadDeadline(ring.stop)
	if _, err := ring.own.Read(make([]byte, 1)); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, 0, errRunOver
		}
		return nil, 0, err
	}
	return func() { ring.next.Write([]byte{1}) }, ring.slot, nil
}

// ring is a fairfloor worker's two pipes: the one it waits on and the one
// it hands its token to.
var ring struct {
	own, next *os.File
	stop      time.Time
	slot      int
}

// errRunOver ends a fairfloor worker left without tokens after the run.
var errRunOver = errors.New("run over")

// openFIFO opens the ring's named pipe i, made by whichever worker comes
// first. Read-write, so that the open never waits for the other end; Go's
// poller, not a blocked thread, waits for its reads.
func openFIFO(dir string, i int) (*os.File, error) {
	path := filepath.Join(dir, "fifo-"+strconv.Itoa(i))
	if err := unix.Mkfifo(path, 0o600); err != nil && err != unix.EEXIST {
		return nil, &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	return os.OpenFile(path, os.O_RDWR, 0)
}

// pools caches one Pool per directory, as a real program keeps its pool.
var pools = map[string]*llmslots.Pool{}

func librarySlot(dir string, max int, wait time.Duration) (func(), int, error) {
	p := pools[dir]
	if p == nil {
		var err error
		if p, err = llmslots.NewPool(dir); err != nil {
			return nil, 0, err
		}
		pools[dir] = p
	}
	g, err := p.Acquire(max, wait)
	if err != nil {
		return nil, 0, err
	}
	return func() { g.Release() }, g.SlotID(), nil
}

var errBusy = errors.New("busy")

// referenceSlot follows the reference's protocol and timing exactly:
// create-exclusive, non-blocking flock, "pid=N" line, then on release
// delete the file and close it; when every slot is taken, sleep 100 ms.
func referenceSlot(dir string, max int, wait time.Duration) (func(), int, error) {
	start := time.Now()
	for {
		for id := range max {
			path := filepath.Join(dir, "slot-"+strconv.Itoa(id)+".lock")
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				continue
			}
			if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
				fmt.Fprintf(f, "pid=%d\n", os.Getpid())
				return func() { os.Remove(path); f.Close() }, id, nil
			}
			f.Close()
		}
		if time.Since(start) >= wait {
			return nil, 0, errBusy
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// selfCPU is the CPU time this process has used, all threads, and the
// context switches its threads made (voluntary and not).
func selfCPU() (time.Duration, int64) {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Nvcsw) + int64(ru.Nivcsw)
}

// monotonic is the machine-wide clock all processes share.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func runWorker() int {
	take := strategies[os.Getenv("BENCH_STRATEGY")]
	// BENCH_PROFILE=DIR writes each worker's CPU profile to DIR/cpu-PID,
	// to see where a contended waiter's time goes.
	if dir := os.Getenv("BENCH_PROFILE"); dir != "" {
		if f, err := os.Create(filepath.Join(dir, "cpu-"+os.Getenv("BENCH_STRATEGY")+"-"+strconv.Itoa(os.Getpid()))); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	dir, max := os.Getenv("BENCH_DIR"), envInt("BENCH_MAX")
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	switch os.Getenv(workerEnv) {
	case "throttle":
		return throttleWorker() // throttle.go
	case "cycle":
		// Cycles of think, acquire, hold, release until the end time;
		// each reported as "ev arrive acquired released slot" in
		// monotonic nanoseconds.
		hold, think := envDuration("BENCH_HOLD"), envDuration("BENCH_THINK")
		start, end := int64(envInt("BENCH_START")), int64(envInt("BENCH_END"))
		for monotonic() < start {
			time.Sleep(time.Duration(start-monotonic()) + 1)
		}
		// The CPU this process spends between start and end, without its
		// start-up and exit: with 256 processes those would add more to
		// each acquisition than the acquisition itself.
		// It is taken at the end time, not when the loop ends: a worker
		// still waiting then waits on among others that exit, whose
		// exits are no cost of the acquisitions made in the run.
		cpu0, sw0 := selfCPU()
		atEnd := make(chan [2]int64, 1)
		time.AfterFunc(time.Duration(end-monotonic()), func() {
			cpu, sw := selfCPU()
			atEnd <- [2]int64{int64(cpu - cpu0), sw - sw0}
		})
		defer func() {
			use := <-atEnd
			fmt.Fprintln(out, "cpu", use[0], use[1])
		}()
		for monotonic() < end {
			if think > 0 {
				time.Sleep(rand.N(think))
			}
			arrive := monotonic()
			release, slot, err := take(dir, max, time.Minute)
			if errors.Is(err, errRunOver) {
				break
			}
			if err != nil {
				fmt.Fprintln(out, "error", err)
				return 1
			}
			acquired := monotonic()
			if hold > 0 {
				time.Sleep(hold)
			}
			released := monotonic()
			release()
			fmt.Fprintln(out, "ev", arrive, acquired, released, slot)
		}
		return 0
	case "hold":
		// Say "waiting", take a slot within BENCH_WAIT (default an
		// hour), say "held" and when (monotonic nanoseconds, taken as the
		// acquire returns), keep it until stdin closes.
		wait := envDuration("BENCH_WAIT")
		if wait == 0 {
			wait = time.Hour
		}
		fmt.Println("waiting")
		release, _, err := take(dir, max, wait)
		acquired := monotonic()
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("held", acquired)
		io.Copy(io.Discard, os.Stdin)
		release()
		return 0
	}
	return 2
}

// worker is a started worker process.
type worker struct {
	cmd   *exec.Cmd
	out   *bufio.Scanner
	stdin io.WriteCloser
}

func startWorker(mode, strat, dir string, max int, env ...string) (*worker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), workerEnv+"="+mode, "BENCH_STRATEGY="+strat, "BENCH_DIR="+dir,
		"BENCH_MAX="+strconv.Itoa(max))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &worker{cmd: cmd, out: sc, stdin: stdin}, nil
}

// expect reads the worker's reports up to the first that starts with word,
// and returns the number after it, if any.
func (w *worker) expect(word string) (int64, error) {
	for w.out.Scan() {
		if e, ok := strings.CutPrefix(w.out.Text(), "error "); ok {
			return 0, fmt.Errorf("worker %d: %s", w.cmd.Process.Pid, e)
		}
		rest, ok := strings.CutPrefix(w.out.Text(), word)
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		return n, nil
	}
	return 0, fmt.Errorf("worker %d ended before saying %q (%v)", w.cmd.Process.Pid, word, w.out.Err())
}

func (w *worker) stop() {
	w.cmd.Process.Kill()
	w.cmd.Wait()
}

// cycle is one acquire/hold/release as a worker reported it.
type cycle struct {
	proc                       int
	arrive, acquired, released int64
	slot                       int
}

// runCycles starts n cycle workers on a fresh pool and collects their
// reports.
func runCycles(root, strat string, n, max int, hold, think, length time.Duration) ([]cycle, int64, int64, usageOf, error) {
	dir, err := os.MkdirTemp(root, strat+"-")
	if err != nil {
		return nil, 0, 0, usageOf{}, err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o700)
	start := monotonic() + int64(300*time.Millisecond+time.Duration(n)*10*time.Millisecond) // time for every worker to start
	end := start + int64(length)
	var ws []*worker
	for i := range n {
		w, err := startWorker("cycle", strat, dir, max, "BENCH_HOLD="+hold.String(), "BENCH_THINK="+think.String(),
			"BENCH_START="+strconv.FormatInt(start, 10), "BENCH_END="+strconv.FormatInt(end, 10),
			"BENCH_INDEX="+strconv.Itoa(i), "BENCH_PROCS="+strconv.Itoa(n))
		if err != nil {
			return nil, 0, 0, usageOf{}, err
		}
		ws = append(ws, w)
	}
	var cycles []cycle
	var failure error
	var use usageOf // the workers' between start and end
	for i, w := range ws {
		for w.out.Scan() {
			var ns, sw int64
			if _, err := fmt.Sscanf(w.out.Text(), "cpu %d %d", &ns, &sw); err == nil {
				use.cpu += time.Duration(ns)
				use.switches += sw
				continue
			}
			var c cycle
			if _, err := fmt.Sscanf(w.out.Text(), "ev %d %d %d %d", &c.arrive, &c.acquired, &c.released, &c.slot); err != nil {
				failure = fmt.Errorf("worker %d: %q", i, w.out.Text())
				continue
			}
			c.proc = i
			cycles = append(cycles, c)
		}
		if err := w.cmd.Wait(); err != nil && failure == nil {
			failure = fmt.Errorf("worker %d: %v", i, err)
		}
	}
	return cycles, start, end, use, failure
}

// usageOf is what workers used between a run's start and end.
type usageOf struct {
	cpu      time.Duration
	switches int64 // context switches
}
