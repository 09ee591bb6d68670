//go:build unix

package llmslots

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// The adversarial tests' helper modes (see helperModes). They report on
// stdout: adv-ops one JSON object per line.

// opResult is one operation's outcome as a helper reports it.
type opResult struct {
	Op     string  `json:"op"`
	Kind   string  `json:"kind,omitempty"` // see errKind; "" on success
	Err    string  `json:"err,omitempty"`
	Slot   int     `json:"slot"`
	Stale  []int   `json:"stale,omitempty"`
	Status *Status `json:"status,omitempty"`
	State  string  `json:"state,omitempty"`
	Detail string  `json:"detail,omitempty"`
}

// errKind names the sentinel an error matches, for the test to branch on.
func errKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, ErrHeld):
		return "held"
	case errors.Is(err, ErrUnsafeDir):
		return "unsafe"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	}
	return "other"
}

// runOps runs the operations HELPER_OPS lists (separated by '|') on the
// pool in LLMSLOTS_DIR and reports each: acquire:MAX (a slot taken is held
// until exit), status:MAX, stale:MAX, force:ID, fallback:PATH (judge the
// slot file at PATH by its record alone, as when its lock cannot be tried).
func runOps() int {
	p, err := NewPool(os.Getenv(EnvDir))
	enc := json.NewEncoder(os.Stdout)
	if err != nil {
		enc.Encode(opResult{Op: "pool", Kind: errKind(err), Err: err.Error()})
		return 1
	}
	var held []*Guard
	for _, op := range strings.Split(os.Getenv("HELPER_OPS"), "|") {
		name, arg, _ := strings.Cut(op, ":")
		n, _ := strconv.Atoi(arg)
		r := opResult{Op: op, Slot: -1}
		var err error
		switch name {
		case "acquire":
			var g *Guard
			if g, err = p.Acquire(n, 0); err == nil {
				held = append(held, g)
				r.Slot = g.SlotID()
			}
		case "status":
			var st Status
			if st, err = p.ReadStatus(n); err == nil {
				r.Status = &st
			}
		case "stale":
			r.Stale, err = p.FindStale(n)
		case "force":
			err = p.ForceRelease(n)
		case "fallback":
			res := slotfile.FallbackProbe(arg, syscall.EACCES)
			r.State, r.Detail = string(res.State), res.Detail
		default:
			err = fmt.Errorf("unknown op %q", op)
		}
		if err != nil {
			r.Kind, r.Err = errKind(err), err.Error()
		}
		enc.Encode(r)
	}
	for _, g := range held {
		g.Release()
	}
	return 0
}

// runSignalStorm runs HELPER_GOROUTINES goroutines, each doing
// HELPER_CYCLES acquire/release cycles on a pool of HELPER_MAX slots, while
// the test floods the process with signals it has asked to be notified of
// (so each one interrupts whatever system call a thread is in). It checks
// from its own bookkeeping that no slot ever has two holders and that
// never more than max hold at once, and reports the counts.
func runSignalStorm() int {
	max, _ := strconv.Atoi(os.Getenv("HELPER_MAX"))
	goroutines, _ := strconv.Atoi(os.Getenv("HELPER_GOROUTINES"))
	cycles, _ := strconv.Atoi(os.Getenv("HELPER_CYCLES"))
	p, err := NewPool(os.Getenv(EnvDir))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGWINCH, syscall.SIGURG, syscall.SIGUSR1)
	var received atomic.Int64
	go func() {
		for range sigs {
			received.Add(1)
		}
	}()
	fmt.Println("ready")
	var (
		holding    atomic.Int64
		owner      = make([]atomic.Int64, max)
		acquired   atomic.Int64
		violations atomic.Int64
		errs       atomic.Int64
		firstErr   atomic.Value
		wg         sync.WaitGroup
	)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range cycles {
				g, err := p.Acquire(max, 30*time.Second)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				acquired.Add(1)
				if holding.Add(1) > int64(max) || !owner[g.SlotID()].CompareAndSwap(0, int64(i+1)) {
					violations.Add(1)
				}
				owner[g.SlotID()].Store(0)
				holding.Add(-1)
				if err := g.Release(); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("done acquired=%d violations=%d errors=%d signals=%d first_error=%v\n",
		acquired.Load(), violations.Load(), errs.Load(), received.Load(), firstErr.Load())
	return 0
}
