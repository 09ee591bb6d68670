//go:build unix

package llmslots

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/fdpass"
)

// inheritViaEnv, when set for an inherit-child helper, makes it first
// take a slot of the pool in its value (max=1, no wait) and start the test
// binary again as a grandchild (an inherit-child on the same pool) that
// inherits that slot, then print what the grandchild said.
const inheritViaEnv = "LLMSLOTS_TEST_INHERIT_VIA"

// inheritChildHelper, the inherit-child mode, acquires a slot of its pool
// (max=1, no wait) and reports the outcome on stdout.
func inheritChildHelper() int {
	if via := os.Getenv(inheritViaEnv); via != "" {
		p, _ := NewPool(via)
		g, err := p.Acquire(1, 0)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		os.Unsetenv(inheritViaEnv) // the grandchild acquires, and starts nothing
		cmd := helperCmd(os.Args[0], "inherit-child", os.Getenv(EnvDir), 1)
		if err := g.Inherit(cmd); err != nil {
			fmt.Println("error", err)
			return 1
		}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Run()
		g.Release()
		return 0
	}
	p, err := NewPool(os.Getenv(EnvDir))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	start := time.Now()
	g, err := p.Acquire(1, 0)
	switch {
	case errors.Is(err, ErrBusy):
		fmt.Println("busy")
	case err != nil:
		fmt.Println("error", err)
	default:
		fmt.Println("got", g.SlotID(), "nested", g.nested(), "in", time.Since(start).Round(time.Millisecond))
		if err := g.Release(); err != nil {
			fmt.Println("error", err)
		}
	}
	return 0
}

// inheritChild is an inherit-child helper on the pool in dir, not started.
func inheritChild(t *testing.T, dir string) *exec.Cmd {
	return helperCmd(os.Args[0], "inherit-child", dir, 1)
}

// A child started holding the parent's slot that acquires from the same
// pool with max=1 gets that slot back at once, instead of waiting on its
// own parent; its Release leaves the parent's slot held.
func TestInheritedSlotNestsInChild(t *testing.T) {
	p, _ := NewPool(t.TempDir())
	g, err := p.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	cmd := inheritChild(t, p.Dir())
	if err := g.Inherit(cmd); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(cmd.Env, "\n"), fdpass.EnvVar+"="); n != 1 {
		t.Fatalf("cmd.Env has %d %s entries; want 1", n, fdpass.EnvVar)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); !strings.HasPrefix(got, "got 0 nested true") {
		t.Fatalf("child said %q; want it to get slot 0 as a nested guard", got)
	}
	if !g.Held() {
		t.Fatal("the parent's guard was released")
	}
	if st, _ := p.ReadStatus(1); st.Slots[0].State != StateHeld || st.Slots[0].PID != os.Getpid() {
		t.Fatalf("after the child: slot 0 is %s by pid %d; want held by %d", st.Slots[0].State, st.Slots[0].PID, os.Getpid())
	}
}

// The inherited descriptor is checked: a variable that names a descriptor
// which is not the locked slot file (here stdin) is ignored, and the child
// waits for a slot like anyone else.
func TestInheritedVariableIsChecked(t *testing.T) {
	p, _ := NewPool(t.TempDir())
	// The slot is held by another process, not by the child's ancestor
	// (this test): a child whose ancestor holds the slot nests in it even
	// without the descriptor (issue 10), which is not what is tested here.
	h := startHelper(t, "hold", p.Dir(), 1)
	if h.held() != 0 {
		t.Fatal("helper did not take slot 0")
	}
	slot0 := p.SlotPath(0)
	for _, v := range []string{
		"fd=0;slot=0;dir=" + p.Dir(),  // open, but not the slot file
		"fd=99;slot=0;dir=" + p.Dir(), // not open
		"fd=3;slot=0",                 // malformed
	} {
		cmd := inheritChild(t, p.Dir())
		cmd.Env = append(cmd.Env, fdpass.EnvVar+"="+v)
		f, err := os.Open(slot0) // fd 3 in the child: the slot file, but not the locked open file
		if err != nil {
			t.Fatal(err)
		}
		cmd.ExtraFiles = []*os.File{f}
		out, err := cmd.Output()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != "busy" {
			t.Errorf("%s=%q: child said %q; want busy", fdpass.EnvVar, v, got)
		}
	}
	// The slot file opened anew (not the locked open file) fails the lock
	// check too.
	cmd := inheritChild(t, p.Dir())
	f, _ := os.Open(slot0)
	defer f.Close()
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(cmd.Env, fdpass.EnvVar+"=fd=3;slot=0;dir="+p.Dir())
	if out, _ := cmd.Output(); strings.TrimSpace(string(out)) != "busy" {
		t.Errorf("another open file of the slot passed as inherited: child said %q; want busy", out)
	}
}

func TestInheritBadInputs(t *testing.T) {
	p, _ := NewPool(t.TempDir())
	g, err := p.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Inherit(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Inherit(nil) = %v; want ErrInvalid", err)
	}
	var zero Guard
	if err := zero.Inherit(exec.Command("true")); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Guard: Inherit = %v; want ErrInvalid", err)
	}
	if _, err := zero.PrepareExec(nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Guard: PrepareExec = %v; want ErrInvalid", err)
	}
	var nilGuard *Guard
	if err := nilGuard.Inherit(exec.Command("true")); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil Guard: Inherit = %v; want ErrInvalid", err)
	}
	if _, err := nilGuard.PrepareExec(nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil Guard: PrepareExec = %v; want ErrInvalid", err)
	}
	g.Release()
	if err := g.Inherit(exec.Command("true")); !errors.Is(err, ErrInvalid) {
		t.Errorf("released Guard: Inherit = %v; want ErrInvalid", err)
	}
	if _, err := g.PrepareExec([]string{"true"}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("released Guard: PrepareExec = %v; want ErrInvalid", err)
	}
}

// A slot taken inside another pool's inherited slot does not cut the
// grandchild off from the outer one: holding pool A, a child takes a slot
// of pool B and starts a grandchild, which asks for A with max=1 and must
// get the inherited A slot at once.
func TestInheritedSlotsOfTwoPools(t *testing.T) {
	a, _ := NewPool(t.TempDir())
	b, _ := NewPool(t.TempDir())
	g, err := a.Acquire(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	cmd := inheritChild(t, a.Dir())
	cmd.Env = append(cmd.Env, inheritViaEnv+"="+b.Dir())
	if err := g.Inherit(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); !strings.HasPrefix(got, "got 0 nested true") {
		t.Fatalf("grandchild said %q; want it to get pool A's slot 0 as a nested guard", got)
	}
}

func TestParseInheritances(t *testing.T) {
	a := fdpass.Slot{FD: 3, ID: 0, Dir: "/a"}
	b := fdpass.Slot{FD: 4, ID: 5, Dir: "/b c"}
	got, errs := fdpass.ParseAll(a.String()+"\n"+"garbage"+"\n"+b.String()+"\n", MaxSlots)
	if len(got) != 2 || got[0] != a || got[1] != b || len(errs) != 1 {
		t.Fatalf("parseInheritances: %+v, %v", got, errs)
	}
	env := fdpass.WithEnv([]string{"A=1", fdpass.EnvVar + "=old"}, []fdpass.Slot{a, b})
	if len(env) != 2 || env[1] != fdpass.EnvVar+"="+a.String()+"\n"+b.String() {
		t.Fatalf("withInheritance: %q", env)
	}
}

func TestParseInheritance(t *testing.T) {
	want := fdpass.Slot{FD: 4, ID: 2, Dir: "/run/x;y=z"}
	got, err := fdpass.Parse(want.String(), MaxSlots)
	if err != nil || got != want {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "fd=;slot=1;dir=/d", "fd=-1;slot=1;dir=/d", "fd=3;slot=1024;dir=/d", "slot=1;fd=3;dir=/d", "fd=3;slot=1",
		"fd=+3;slot=1;dir=/d", "fd=03;slot=1;dir=/d", "fd=3;slot=07;dir=/d", "fd= 3;slot=1;dir=/d"} {
		if _, err := fdpass.Parse(bad, MaxSlots); err == nil {
			t.Errorf("parseInheritance(%q) accepted it", bad)
		}
	}
}
