//go:build linux

package llmslots

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/llmslots/llmslots/internal/slotfile"
)

// Tests with another user's files and processes. Run as root, they start
// helpers as uid 65534 (nobody): permission bits do not apply to root.

// writeOwned writes a file and gives it to uid with mode perm.
func writeOwned(t *testing.T, path string, content []byte, uid int, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// A slot file its owner cannot read (mode 000, in the owner's own pool):
// its lock cannot be tried, and with no pid to judge it is counted as
// held. Nothing deletes it and the rest of the pool keeps working.
func TestUnreadableSlotFile(t *testing.T) {
	bin := binaryForOthers(t)
	dir := othersPoolDir(t, 0o700)
	path := filepath.Join(dir, "slot-0.lock")
	writeOwned(t, path, slotfile.Record{PID: deadPid(t)}.Marshal(), otherUID, 0)
	res := runOpsAs(t, bin, otherUID, dir, "status:2", "stale:2", "force:0", "acquire:1", "acquire:2")
	st := res[0].Status
	if st != nil {
		t.Logf("slot 0 as its owner sees it: %s (%s)", st.Slots[0].State, st.Slots[0].Detail)
	}
	if st == nil || st.Slots[0].State != StateHeld || !strings.Contains(st.Slots[0].Detail, "permission denied") || st.Free != 1 {
		t.Fatalf("status: %+v", res[0])
	}
	if res[1].Kind != "" || len(res[1].Stale) != 0 {
		t.Errorf("FindStale: %+v", res[1])
	}
	if res[2].Kind != "held" {
		t.Errorf("ForceRelease: %+v; want ErrHeld", res[2])
	}
	if res[3].Kind != "busy" || !strings.Contains(res[3].Err, "held by pids unknown") {
		t.Errorf("Acquire(1): %+v; want ErrBusy", res[3])
	}
	if res[4].Kind != "" || res[4].Slot != 1 {
		t.Errorf("Acquire(2): %+v; want slot 1", res[4])
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0 {
		t.Fatalf("the unreadable file was changed: %v %v", fi, err)
	}
}

// A read-only pool directory (0500, its owner's): Acquire gives an error
// naming the permission problem; status, the stale scan and the refusal
// to remove still work.
func TestReadOnlyPoolDirectory(t *testing.T) {
	for _, queue := range []bool{false, true} {
		name := "without a queue directory"
		if queue {
			name = "with a queue directory"
		}
		t.Run(name, func(t *testing.T) {
			bin := binaryForOthers(t)
			dir := othersPoolDir(t, 0o700)
			if queue {
				// Made by an earlier, writable life of the pool.
				runOpsAs(t, bin, otherUID, dir, "acquire:1")
			}
			writeOwned(t, filepath.Join(dir, "slot-0.lock"), slotfile.Record{PID: deadPid(t)}.Marshal(), otherUID, 0o600)
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			res := runOpsAs(t, bin, otherUID, dir, "acquire:1", "acquire:2", "status:2", "stale:2", "force:0")
			for _, r := range res[:2] {
				t.Logf("%s: %s", r.Op, r.Err)
				if r.Kind != "permission" || !strings.Contains(r.Err, "permission denied") {
					t.Errorf("%s: %+v; want a permission error", r.Op, r)
				}
			}
			if st := res[2].Status; st == nil || st.Slots[0].State != StateStale || st.Slots[1].State != StateFree || st.Active != 0 {
				t.Errorf("status: %+v", res[2])
			}
			if len(res[3].Stale) != 1 || res[3].Stale[0] != 0 {
				t.Errorf("FindStale: %+v", res[3])
			}
			if res[4].Kind != "permission" {
				t.Errorf("ForceRelease: %+v; want a permission error", res[4])
			}
			if _, err := os.Lstat(filepath.Join(dir, "slot-0.lock")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A directory owned by another user is refused, in both directions: root
// refuses nobody's (TestUnsafeDirectoriesAreRefused) and nobody refuses
// root's, even when it could enter and read it.
func TestAnotherUsersDirectoryIsRefused(t *testing.T) {
	bin := binaryForOthers(t)
	dir := sharedTempDir(t) // root's, mode 0755
	res := runOpsAs(t, bin, otherUID, dir, "acquire:1", "status:1", "force:0")
	for _, r := range res {
		t.Logf("%s: %s", r.Op, r.Err)
		if r.Kind != "unsafe" || !strings.Contains(r.Err, "belongs to uid 0, not to you (uid 65534)") {
			t.Errorf("%s: %+v; want ErrUnsafeDir naming both uids", r.Op, r)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("nobody made files in root's directory: %v", entries)
	}
}

// A live process of another user is never taken for dead. Here root (this
// process) holds slot 0 of a pool nobody owns, through a file nobody
// cannot open: nobody's status counts it held, nothing frees it, and
// judged by its record alone (kill(pid, 0) fails with EPERM) root's pid
// is alive.
func TestAnotherUsersLiveHolderIsNeverDead(t *testing.T) {
	bin := binaryForOthers(t)
	dir := othersPoolDir(t, 0o700)
	me := slotfile.Self()
	me.Since = me.Since.Add(1)
	holdForeign(t, filepath.Join(dir, "slot-0.lock"), me.Marshal()) // root's, 0600
	// The same record where nobody may read it but not lock it.
	readable := filepath.Join(filepath.Dir(dir), "slot-9.lock")
	writeOwned(t, readable, me.Marshal(), 0, 0o644)

	res := runOpsAs(t, bin, otherUID, dir, "status:2", "stale:2", "force:0", "acquire:1", "acquire:2", "fallback:"+readable)
	if st := res[0].Status; st == nil || st.Slots[0].State != StateHeld || st.Active != 1 || st.Free != 1 {
		t.Errorf("status: %+v", res[0])
	}
	if res[1].Kind != "" || len(res[1].Stale) != 0 {
		t.Errorf("FindStale: %+v", res[1])
	}
	if res[2].Kind != "held" {
		t.Errorf("ForceRelease: %+v; want ErrHeld", res[2])
	}
	if res[3].Kind != "busy" {
		t.Errorf("Acquire(1): %+v; want ErrBusy", res[3])
	}
	if res[4].Kind != "" || res[4].Slot != 1 {
		t.Errorf("Acquire(2): %+v; want slot 1", res[4])
	}
	if res[5].State != string(StateHeld) || !strings.Contains(res[5].Detail, "pid is alive") {
		t.Errorf("root's pid %d judged from its record by nobody: %+v; want held, alive", os.Getpid(), res[5])
	}
	if _, err := os.Lstat(filepath.Join(dir, "slot-0.lock")); err != nil {
		t.Fatal("root's held slot file was deleted")
	}
}

// Containers that share a bind-mounted pool see each other's pids as
// absent (another pid namespace) or as strangers, and may or may not share
// a host name. The lock still decides: a held slot whose recorded pid does
// not exist here is held, not stale, and nothing frees it.
func TestForeignPidsInASharedPool(t *testing.T) {
	gone := deadPid(t)
	cases := []struct {
		name string
		rec  slotfile.Record
	}{
		{"another host, a pid absent here", slotfile.Record{PID: gone, Host: "container-7.invalid", Start: "12345"}},
		{"this host, a pid absent here", slotfile.Record{PID: gone, Host: slotfile.Self().Host, Start: "12345"}},
		{"this host, a pid of another process here", slotfile.Record{PID: 1, Host: slotfile.Self().Host, Start: "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newTestPool(t)
			mustAcquire(t, p, 1, 0).Release()
			holdForeign(t, p.SlotPath(0), c.rec.Marshal())
			st, err := p.ReadStatus(1)
			if err != nil || st.Slots[0].State != StateHeld || st.Slots[0].PID != c.rec.PID || st.Active != 1 {
				t.Fatalf("status %+v %v", st, err)
			}
			if stale, err := p.FindStale(1); err != nil || len(stale) != 0 {
				t.Fatalf("FindStale: %v %v", stale, err)
			}
			err = p.ForceRelease(0)
			if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(c.rec.PID)) {
				t.Fatalf("ForceRelease: %v; want ErrHeld", err)
			}
			if _, err := p.Acquire(1, 0); !errors.Is(err, ErrBusy) {
				t.Fatalf("Acquire: %v; want ErrBusy", err)
			}
			if g := mustAcquire(t, p, 2, 0); g.SlotID() != 1 {
				t.Fatalf("took slot %d", g.SlotID())
			}
		})
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	h := startHelper(t, "hold", t.TempDir(), 1)
	h.held()
	h.kill()
	return h.pid()
}

// otherUID is the unprivileged user (nobody) the other-user tests run helpers as.
const otherUID = 65534

// binaryForOthers copies the test binary where uid 65534 may run it (the
// build directory is private) and returns its path. It skips the test
// when not root.
func binaryForOthers(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	dir := sharedTempDir(t)
	bin := filepath.Join(dir, "helper")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// sharedTempDir is a root-owned 0755 temporary directory that uid 65534
// can enter (t.TempDir's parents are private).
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "llmslots-adv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// othersPoolDir makes a directory owned by uid 65534 with mode perm below
// a shared temporary directory.
func othersPoolDir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	dir := filepath.Join(sharedTempDir(t), "pool")
	if err := os.Mkdir(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asUser makes cmd run as uid and gid, and returns it.
func asUser(cmd *exec.Cmd, uid, gid int) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd
}

// runOpsAs runs the adv-ops helper as uid (0: as this process's user) on
// the pool in dir and returns its reports, one per op.
func runOpsAs(t *testing.T, bin string, uid int, dir string, ops ...string) []opResult {
	t.Helper()
	cmd := helperCmd(bin, "adv-ops", dir, 0, "HELPER_OPS="+strings.Join(ops, "|"))
	if uid != 0 {
		asUser(cmd, uid, uid)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
	}
	var res []opResult
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r opResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("helper said %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	if len(res) != len(ops) {
		t.Fatalf("helper answered %d of %d ops:\n%s", len(res), len(ops), out)
	}
	return res
}

// kill(pid, 0) on another user's live process fails with EPERM: that
// process is alive. Run as root, the test judges this process from a
// helper that runs as nobody.
func TestPidAliveForAnotherUsersProcess(t *testing.T) {
	cmd := asUser(helperCmd(binaryForOthers(t), "alive", "", 0, "HELPER_PID="+strconv.Itoa(os.Getpid())), otherUID, otherUID)
	cmd.Stderr = nil // CombinedOutput takes it
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "kill0 operation not permitted alive true" {
		t.Fatalf("helper as nobody says %q; want EPERM judged alive", got)
	}
}
