package filelock

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// Names lists every entry, past what one read of the directory returns,
// and nothing else (no "." or "..").
func TestNamesListsEveryEntry(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 400 { // about 25 KiB of entries: several reads
		name := "t-" + strconv.Itoa(i) + "-0000000000000000000000000000000"
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Names(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d names, want %d", len(got), len(want))
	}
	if _, err := Names(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing directory: %v, want fs.ErrNotExist", err)
	}
}

// EachName sees the names Names returns, each once, past what one read of
// the directory returns.
func TestEachNameSeesEveryEntry(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 1000 { // about 70 KiB of entries: more than one buffer
		name := "t-" + strconv.Itoa(i) + "-000000000000000000000000000000000000000"
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := EachName(dir, func(name []byte) { got = append(got, string(name)) }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d names, want %d", len(got), len(want))
	}
	err := EachName(filepath.Join(dir, "missing"), func([]byte) { t.Fatal("a name in a missing directory") })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing directory: %v, want fs.ErrNotExist", err)
	}
}
