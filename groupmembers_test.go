//go:build linux

package llmslots

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// Tests of group-shared pools between two real, unprivileged users of one
// group: daemon (uid 1) and bin (uid 2), whose own groups are 1 and 2,
// both members of nogroup (65534), the pool's group. Root (this process)
// only sets the scene: permission bits do not apply to it.

const (
	memberA     = 1     // daemon
	memberB     = 2     // bin
	memberGroup = 65534 // nogroup: the pool's group, supplementary for both
)

// stallEnv, set for a helper to a kind of file ("ticket", "slot"), makes it say "stall KIND" and sleep right after creating such a
// file, before the file has its final mode (see slotfile.TestHooks.Birth).
const stallEnv = "LLMSLOTS_TEST_STALL_BIRTH"

func init() {
	helperModes["group-cycles"] = groupCyclesHelper // rounds of acquire/release cycles, counting errors
	if kind := os.Getenv(stallEnv); kind != "" && os.Getenv(helperEnv) != "" {
		slotfile.TestHooks.Birth = func(k, path string) {
			if k == kind {
				emit("stall %s", k)
				time.Sleep(30 * time.Second)
			}
		}
	}
}

// startMember runs a helper as uid, a member of memberGroup (its own group
// is uid), on the group pool in dir.
func startMember(t *testing.T, uid int, mode, dir string, max int, env ...string) *helper {
	t.Helper()
	env = append(env, EnvGroup+"="+strconv.Itoa(memberGroup))
	cmd := helperCmd(binaryForOthers(t), mode, dir, max, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{memberGroup}}}
	return launchHelper(t, cmd)
}

// groupParent makes a directory in which members may make a pool: root's,
// group memberGroup, mode 2770, under a directory everyone can reach.
func groupParent(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(sharedTempDir(t), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 0, memberGroup); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o2770|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lineWithin returns the helper's next line, or fails the test when none
// comes within d: the helper is stuck.
func (h *helper) lineWithin(d time.Duration) string {
	h.t.Helper()
	got := make(chan string, 1)
	go func() {
		if h.out.Scan() {
			got <- h.out.Text()
		} else {
			got <- fmt.Sprintf("(no more output: %v)", h.out.Err())
		}
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(d):
		h.cmd.Process.Kill()
		<-got
		h.t.Fatalf("helper %d said nothing for %v: stuck", h.pid(), d)
		return ""
	}
}

// groupCyclesHelper runs HELPER_ROUNDS rounds (default 1): round r starts
// once the file HELPER_GO.r exists (at once without HELPER_GO), and makes
// HELPER_CYCLES Acquire(max, HELPER_WAIT ms)/Release cycles, holding each
// slot 0-2 ms. After each round it says "round R ok N errors E" and, if
// there were errors, the first one.
func groupCyclesHelper() int {
	p, max, ok := helperPool("group-cycles")
	if !ok {
		return 1
	}
	cycles := envInt("HELPER_CYCLES", 10)
	wait := time.Duration(envInt("HELPER_WAIT", 30000)) * time.Millisecond
	goFile := os.Getenv("HELPER_GO")
	for r := 1; r <= envInt("HELPER_ROUNDS", 1); r++ {
		for goFile != "" {
			if _, err := os.Stat(goFile + "." + strconv.Itoa(r)); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		okN, errN, first := 0, 0, ""
		for range cycles {
			g, err := p.Acquire(max, wait)
			if err != nil {
				errN++
				if first == "" {
					first = err.Error()
				}
				continue
			}
			time.Sleep(randMs(2))
			if err := g.Release(); err != nil {
				errN++
				if first == "" {
					first = "release: " + err.Error()
				}
				continue
			}
			okN++
		}
		emit("round %d ok %d errors %d %s", r, okN, errN, first)
	}
	return 0
}

// roundResult is one "round R ok N errors E FIRST" line.
type roundResult struct {
	ok, errors int
	first      string
}

func parseRound(t *testing.T, l string, round int) roundResult {
	t.Helper()
	var r roundResult
	prefix := "round " + strconv.Itoa(round) + " "
	if !strings.HasPrefix(l, prefix) {
		t.Fatalf("helper said %q; want a report of round %d", l, round)
	}
	if _, err := fmt.Sscanf(l[len(prefix):], "ok %d errors %d", &r.ok, &r.errors); err != nil {
		t.Fatalf("helper said %q: %v", l, err)
	}
	if i := strings.Index(l, fmt.Sprintf("errors %d ", r.errors)); i >= 0 {
		r.first = l[i+len(fmt.Sprintf("errors %d ", r.errors)):]
	}
	return r
}

// runMembers starts n cycling helpers of each member on dir, all
// starting each round together, and returns, per round, the acquisitions
// made and failed, and the first errors seen. Between rounds, between(r)
// runs (after round r, before round r+1).
func runMembers(t *testing.T, dir string, n, max, cycles, rounds int, between func(round int)) (ok, failed []int, errs []string) {
	t.Helper()
	goFile := filepath.Join(sharedTempDir(t), "go")
	var hs []*helper
	for i := range 2 * n {
		uid := memberA
		if i%2 == 1 {
			uid = memberB
		}
		hs = append(hs, startMember(t, uid, "group-cycles", dir, max,
			"HELPER_GO="+goFile, "HELPER_ROUNDS="+strconv.Itoa(rounds), "HELPER_CYCLES="+strconv.Itoa(cycles)))
	}
	time.Sleep(300 * time.Millisecond) // all started and polling for the go file
	for r := 1; r <= rounds; r++ {
		if err := os.WriteFile(goFile+"."+strconv.Itoa(r), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		okN, failN := 0, 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		results := make([]string, len(hs))
		for i, h := range hs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := "(none)"
				if h.out.Scan() {
					l = h.out.Text()
				}
				mu.Lock()
				results[i] = l
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, l := range results {
			res := parseRound(t, l, r)
			okN += res.ok
			failN += res.errors
			if res.first != "" && len(errs) < 5 {
				errs = append(errs, res.first)
			}
		}
		ok, failed = append(ok, okN), append(failed, failN)
		if between != nil && r < rounds {
			between(r)
		}
	}
	return ok, failed, errs
}

// Item 8 of issue 11: two members making a new group pool at the same
// instant, and making it again once it was removed, all succeed.
func TestGroupMembersCreateAPoolTogether(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two users")
	}
	for attempt := range 3 {
		dir := filepath.Join(groupParent(t), "pool")
		ok, failed, errs := runMembers(t, dir, 3, 2, 10, 2, func(int) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("attempt %d: acquisitions made %v, failed %v, first errors %q", attempt, ok, failed, errs)
		if failed[0]+failed[1] != 0 {
			t.Fatalf("%v of %v acquisitions failed on first use, %v after the pool was removed: %q",
				failed[0], ok[0]+failed[0], failed[1], errs)
		}
	}
}

// Item 6 of issue 11: under contention between two members every
// acquisition succeeds: no waiter fails on another member's ticket.
func TestGroupMembersContend(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two users")
	}
	dir := filepath.Join(groupParent(t), "pool")
	first := startMember(t, memberA, "hold", dir, 1) // the pool is made before the contention
	first.held()
	first.stdin.Close()
	first.line()
	ok, failed, errs := runMembers(t, dir, 3, 1, 60, 1, nil)
	t.Logf("acquisitions made %v, failed %v, first errors %q", ok, failed, errs)
	if failed[0] != 0 {
		t.Fatalf("%d of %d acquisitions failed: %q", failed[0], ok[0]+failed[0], errs)
	}
}

// Item 6 of issue 11: no file of a group pool is ever seen with a mode
// other than its final one. A member stalls (then is killed) right after
// creating a ticket or a slot file, before the file has its
// group's mode: the other member is never refused by it, and nothing it
// cannot open or remove is left behind.
func TestGroupFilesAreBornShared(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two users")
	}
	t.Run("ticket", func(t *testing.T) {
		dir := filepath.Join(groupParent(t), "pool")
		holder := startMember(t, memberA, "hold", dir, 1)
		if id := holder.held(); id != 0 {
			t.Fatalf("holder took slot %d", id)
		}
		staller := startMember(t, memberB, "hold", dir, 1, stallEnv+"=ticket")
		if l := staller.lineWithin(10 * time.Second); l != "stall ticket" {
			t.Fatalf("staller said %q", l)
		}
		// Another process of the first member queues behind the ticket
		// being made.
		waiter := startMember(t, memberA, "hold", dir, 1)
		time.Sleep(300 * time.Millisecond)
		staller.kill()
		holder.stdin.Close()
		if l := waiter.lineWithin(10 * time.Second); l != "held 0" {
			t.Fatalf("the waiter behind a ticket being made said %q; want \"held 0\"", l)
		}
		waiter.stdin.Close()
		checkGroupModes(t, dir)
	})
	t.Run("slot", func(t *testing.T) {
		dir := filepath.Join(groupParent(t), "pool")
		first := startMember(t, memberA, "hold", dir, 1)
		first.held()
		first.stdin.Close()
		first.line()
		staller := startMember(t, memberB, "hold", dir, 1, stallEnv+"=slot")
		if l := staller.lineWithin(10 * time.Second); l != "stall slot" {
			t.Fatalf("staller said %q", l)
		}
		staller.kill()
		// The member's slot file of the dead staller, if it shows, must be
		// reclaimable by the other member once it is old enough.
		time.Sleep(slotfile.FreshAge + 200*time.Millisecond)
		h := startMember(t, memberA, "hold", dir, 1)
		if l := h.lineWithin(15 * time.Second); l != "held 0" {
			t.Fatalf("after a member died making a slot file, the other member said %q; want \"held 0\"", l)
		}
		h.stdin.Close()
		checkGroupModes(t, dir)
	})
}

// checkGroupModes fails the test if a slot file, ticket or draft of
// the group pool in dir does not have mode 0660.
func checkGroupModes(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, slotfile.QueueDir)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			n := e.Name()
			if !(slotfile.ParseSlotName(n) >= 0 || strings.HasPrefix(n, slotfile.TicketPrefix) ||
				strings.HasPrefix(n, slotfile.DraftPrefix)) {
				continue
			}
			fi, err := os.Lstat(filepath.Join(d, n))
			if err == nil && fi.Mode().Perm() != 0o660 {
				t.Errorf("%s has mode %v; want %v, the group's", filepath.Join(d, n), fi.Mode().Perm(), os.FileMode(0o660))
			}
		}
	}
}

// Item 9 of issue 11: a group pool directory without the setgid bit
// gives slot files their creator's own group, and one with the sticky bit
// keeps members from deleting each other's files: after a holder's SIGKILL
// the other member could never reclaim its slot. Both are refused, naming
// the fix.
func TestGroupPoolRefusesModesThatBreakReclaim(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as two users")
	}
	for _, mode := range []os.FileMode{0o770, 0o770 | os.ModeSetgid | os.ModeSticky} {
		t.Run(fmt.Sprintf("%04o", unixMode(mode)), func(t *testing.T) {
			dir := filepath.Join(groupParent(t), "pool")
			os.Mkdir(dir, 0o700)
			os.Chown(dir, 0, memberGroup)
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			dead := startMember(t, memberA, "hold", dir, 1)
			l := dead.lineWithin(10 * time.Second)
			if strings.HasPrefix(l, "held ") {
				dead.kill()
			}
			t.Logf("member %d: %q", memberA, l)
			h := startMember(t, memberB, "group-cycles", dir, 1, "HELPER_CYCLES=1", "HELPER_WAIT=0")
			l = h.lineWithin(10 * time.Second)
			t.Logf("member %d after the first one's end: %q", memberB, l)
			want := "chmod 2770 " + dir
			if !strings.Contains(l, "errors 1") || !strings.Contains(l, want) {
				t.Fatalf("member %d said %q; want an error naming the fix %q", memberB, l, want)
			}
		})
	}
}

// unixMode is fs.FileMode's permission and special bits as chmod(1)
// writes them.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
