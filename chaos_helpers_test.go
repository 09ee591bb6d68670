//go:build unix

package llmslots

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
	"golang.org/x/sys/unix"
)

// Helper modes of the chaos and interoperability tests (see helperModes).
//
// Every mode reports on stdout, one write(2) per line, unbuffered, so that
// a line written before a SIGKILL is never lost:
//
//	try <kind>          about to call Acquire or AcquireContext
//	acq <slot> <ns>     Acquire returned slot; CLOCK_MONOTONIC taken just after
//	ino <ino> <nlink> <size>  (chaos mode) the locked file's identity and, by
//	                    fstat now, its link count and size: for diagnosis
//	rel <slot> <ns>     about to release; CLOCK_MONOTONIC taken just before
//	busy <kind>         the wait ran out (ErrBusy)
//	cancelled <kind>    the context ended first
//	error <text>        anything else: the test fails
//	done <cycles>       all cycles finished

// chaosHelper runs HELPER_CYCLES acquire/hold/release cycles on the pool,
// waiting in randomly chosen ways: a long wait, a short Acquire timeout, an
// AcquireContext cancelled or timed out after a few ms, or one attempt.
// HELPER_WAITS=long makes every wait a long one.
func chaosHelper() int {
	dir := os.Getenv(EnvDir)
	max := envInt("HELPER_MAX", 1)
	cycles := envInt("HELPER_CYCLES", 10)
	holdMs := envInt("HELPER_HOLD_MS", 20)
	thinkMs := envInt("HELPER_THINK_MS", 10)
	longOnly := os.Getenv("HELPER_WAITS") == "long"
	p, err := NewPool(dir, WithLabel("chaos"))
	if err != nil {
		emit("error %v", err)
		return 1
	}
	for range cycles {
		time.Sleep(randMs(thinkMs))
		kind := "long"
		if !longOnly {
			kind = []string{"long", "long", "long", "short", "short", "cancel", "cancel", "deadline", "once"}[rand.IntN(9)]
		}
		emit("try %s", kind)
		var g *Guard
		switch kind {
		case "long":
			g, err = p.Acquire(max, 5*time.Second)
		case "short":
			g, err = p.Acquire(max, randMs(20))
		case "once":
			g, err = p.Acquire(max, 0)
		case "cancel":
			ctx, cancel := context.WithCancel(context.Background())
			timer := time.AfterFunc(randMs(20), cancel)
			g, err = p.AcquireContext(ctx, max)
			timer.Stop()
			cancel()
		case "deadline":
			ctx, cancel := context.WithTimeout(context.Background(), randMs(30))
			g, err = p.AcquireContext(ctx, max)
			cancel()
		}
		switch {
		case err == nil:
			emit("acq %d %d", g.SlotID(), monotonic())
			if st, ok := g.info.Sys().(*syscall.Stat_t); ok {
				var now syscall.Stat_t
				syscall.Fstat(int(g.file.Fd()), &now)
				emit("ino %d %d %d", st.Ino, now.Nlink, now.Size)
			}
			time.Sleep(randMs(holdMs))
			emit("rel %d %d", g.SlotID(), monotonic())
			if err := g.Release(); err != nil {
				emit("error release: %v", err)
				return 1
			}
		case errors.Is(err, ErrBusy):
			emit("busy %s", kind)
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			emit("cancelled %s", kind)
		default:
			emit("error %s: %v", kind, err)
			return 1
		}
	}
	emit("done %d", cycles)
	return 0
}

// refAcquire follows the reference implementation (llm_slots.rs,
// acquire_llm_slot) step by step: for each id, create the slot file
// exclusively; if that worked, try a non-blocking exclusive flock; if that
// worked, write "pid=N\n" and hold; if it failed, close the file and leave
// it there; if the create failed (the file exists), go on. After a pass
// with no slot, sleep 100 ms and try again until wait runs out. It never
// looks at an existing file, never deletes one it did not lock, and does
// not check the locked file still has a name.
//
// beforeLock, if set, runs between the create and the flock: the window in
// which the reference is exposed to anyone who deletes unlocked files.
func refAcquire(dir string, max int, wait time.Duration, beforeLock func(id int)) (*os.File, int, error) {
	deadline := time.Now().Add(wait)
	for {
		for id := range max {
			f, err := os.OpenFile(slotfile.SlotPath(dir, id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				continue // the reference ignores the reason
			}
			if beforeLock != nil {
				beforeLock(id)
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
				f.Close()
				continue
			}
			f.WriteString("pid=" + strconv.Itoa(os.Getpid()) + "\n")
			return f, id, nil
		}
		if !time.Now().Before(deadline) {
			return nil, -1, ErrBusy
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refRelease is the reference's LlmSlotGuard::drop: delete the file by
// its path, then close it (which drops the lock).
func refRelease(dir string, id int, f *os.File) {
	os.Remove(slotfile.SlotPath(dir, id))
	f.Close()
}

// refCycleHelper runs HELPER_CYCLES cycles with the reference protocol,
// logging acq/rel lines like chaosHelper.
func refCycleHelper() int {
	dir := os.Getenv(EnvDir)
	max := envInt("HELPER_MAX", 1)
	cycles := envInt("HELPER_CYCLES", 10)
	holdMs := envInt("HELPER_HOLD_MS", 20)
	thinkMs := envInt("HELPER_THINK_MS", 10)
	for range cycles {
		time.Sleep(randMs(thinkMs))
		emit("try ref")
		f, id, err := refAcquire(dir, max, 30*time.Second, nil)
		if err != nil {
			emit("busy ref")
			continue
		}
		emit("acq %d %d", id, monotonic())
		time.Sleep(randMs(holdMs))
		emit("rel %d %d", id, monotonic())
		refRelease(dir, id, f)
	}
	emit("done %d", cycles)
	return 0
}

// refHoldHelper takes one slot with the reference protocol, says
// "held <slot>", and holds it until stdin closes. With HELPER_PAUSE=1 it
// stops between creating a file and locking it, says "created <slot>" and
// goes on when it reads a line from stdin.
func refHoldHelper() int {
	dir := os.Getenv(EnvDir)
	max := envInt("HELPER_MAX", 1)
	in := bufio.NewReader(os.Stdin)
	var pause func(int)
	if os.Getenv("HELPER_PAUSE") == "1" {
		pause = func(id int) {
			emit("created %d", id)
			in.ReadString('\n')
		}
	}
	f, id, err := refAcquire(dir, max, 10*time.Second, pause)
	if err != nil {
		emit("error %v", err)
		return 3
	}
	emit("held %d", id)
	io.Copy(io.Discard, in)
	refRelease(dir, id, f)
	emit("released")
	return 0
}
