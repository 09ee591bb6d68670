package throttle

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// create is a private pool's Create.
func create(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

func TestStoreWriteLoadRemove(t *testing.T) {
	dir := t.TempDir()
	if st, err := Load(dir); st != nil || err != nil || exists(dir) {
		t.Fatalf("a pool without a state: Load = %v, %v; Exists = %v", st, err, exists(dir))
	}
	unlock, err := Lock(dir, GrantPatience, create)
	if err != nil {
		t.Fatal(err)
	}
	err = Write(dir, full, create)
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	st, err := Load(dir)
	if err != nil || st == nil || !reflect.DeepEqual(*st, full) || !exists(dir) {
		t.Fatalf("after Write: Load = %+v, %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, FileName)); string(b) != fullFile {
		t.Fatalf("the file written:\n%s", b)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Fatalf("Write left %s", e.Name())
		}
	}
	if err := Remove(dir, GrantPatience, create); err != nil {
		t.Fatal(err)
	}
	if exists(dir) {
		t.Fatal("the state is still there after Remove")
	}
	if err := Remove(dir, GrantPatience, create); err != nil {
		t.Fatalf("Remove without a state: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, LockName)); err != nil {
		t.Fatalf("the lock file after Remove: %v", err)
	}
}

// Update changes the state read inside the lock, writes only what change
// asks it to, and replaces an unusable file, saying why it was unusable.
func TestUpdate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	keep := func(st *State) (State, bool) {
		if st != nil {
			t.Errorf("change was given %+v for an unusable file", st)
		}
		return State{}, false
	}
	if unusable, err := Update(dir, GrantPatience, create, keep); unusable == nil || err != nil {
		t.Fatalf("Update over garbage: %v, %v; want the reason it is unusable", unusable, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, FileName)); string(b) != "garbage" {
		t.Fatalf("a change that writes nothing wrote %q", b)
	}
	write := func(*State) (State, bool) { return full, true }
	if _, err := Update(dir, GrantPatience, create, write); err != nil {
		t.Fatal(err)
	}
	raise := func(st *State) (State, bool) { next := *st; next.Limit++; return next, true }
	if unusable, err := Update(dir, GrantPatience, create, raise); unusable != nil || err != nil {
		t.Fatalf("Update: %v, %v", unusable, err)
	}
	if st, err := Load(dir); err != nil || st.Limit != full.Limit+1 {
		t.Fatalf("after Update: %+v, %v", st, err)
	}
}

// A write that fails leaves the old state, and no temporary file.
func TestStoreWriteFailure(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, full, create); err != nil {
		t.Fatal(err)
	}
	next := full
	next.Limit = 1
	refuse := func(string) (*os.File, error) { return nil, os.ErrPermission }
	if err := Write(dir, next, refuse); err == nil {
		t.Fatal("Write without a file succeeded")
	}
	if st, err := Load(dir); err != nil || st.Limit != full.Limit {
		t.Fatalf("after a failed Write: %+v, %v", st, err)
	}
	// The temporary file is made, and then the rename fails: the state
	// file's path is a directory that is not empty.
	path := filepath.Join(dir, FileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, next, create); err == nil {
		t.Fatal("Write over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Fatalf("a failed Write left %s", e.Name())
		}
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "a directory, which llmslots never makes") {
		t.Fatalf("Load of a directory: %v", err)
	}
}

// A pause further away than any report can set is cut to MaxPause after
// the file was written, not after each read: it ends (issue 22, item 20:
// before, a 73 h pause read 24 h left for ever; and with the file's mtime
// in the future, too, as a review found).
func TestLoadCutsAFarPause(t *testing.T) {
	dir := t.TempDir()
	far := full
	far.PauseUntil = time.Now().Add(10 * 365 * 24 * time.Hour)
	if err := Write(dir, far, create); err != nil {
		t.Fatal(err)
	}
	for _, age := range []time.Duration{0, 5 * time.Hour, 30 * time.Hour, -time.Hour} {
		written := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(dir, FileName), written, written); err != nil {
			t.Fatal(err)
		}
		st, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := MaxPause - age
		if age < 0 {
			want = 0 // a file from the future pauses no more: it would never count down
		}
		if left := time.Until(st.PauseUntil); left > want || left < want-time.Minute {
			t.Fatalf("a pause ten years away, written %v ago, is %v away, want %v", age, left, want)
		}
	}
}

// A lock held elsewhere is waited for up to the patience, then ErrBusy;
// once it is free, Lock takes it.
func TestLockPatience(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir, GrantPatience, create)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Lock(dir, 20*time.Millisecond, create); !errors.Is(err, ErrBusy) {
		t.Fatalf("Lock while held: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("Lock gave up after %v, before its patience", took)
	}
	unlock()
	again, err := Lock(dir, 0, create)
	if err != nil {
		t.Fatalf("Lock once free: %v", err)
	}
	again()
}

// exists reports whether the pool in dir has a state file.
func exists(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, FileName))
	return err == nil
}
