//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCodex is a stand-in for codex: it stamps its start and end, prints
// its arguments one per bracket, copies stdin to stdout, and exits with its
// first argument.
const fakeCodex = `#!/bin/sh
"$HELPER" stamp "$LOG" start
printf 'args:'
for a in "$@"; do printf ' [%s]' "$a"; done
echo
cat
sleep 0.3
"$HELPER" stamp "$LOG" end
exit "$1"
`

// shimSetup makes a directory with the real (fake) codex and an empty shim
// directory, and returns a PATH with the shim directory first.
func shimSetup(t *testing.T) (realDir, binDir, path string) {
	t.Helper()
	realDir, binDir = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(realDir, "codex"), []byte(fakeCodex), 0o755); err != nil {
		t.Fatal(err)
	}
	return realDir, binDir, binDir + ":" + realDir + ":/usr/bin:/bin"
}

// The shim test: a shim for codex on PATH, 6 parallel calls of
// codex from a shell script, never more than 2 at once, each with its
// arguments, stdin, stdout and exit status passed through intact.
func TestShimLimitsAndPassesThrough(t *testing.T) {
	e := newEnv(t)
	_, binDir, path := shimSetup(t)
	r := e.runEnv(e.with("PATH="+path), "", "shim", "codex", "--max", "2", "--bin-dir", binDir)
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "wrote shim "+filepath.Join(binDir, "codex")) {
		t.Fatalf("shim: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	work, log := t.TempDir(), filepath.Join(t.TempDir(), "log")
	out, err := e.sh(`
cd "$WORK"
for i in 1 2 3 4 5 6; do
	( printf 'input %s\nline two\n' "$i" | codex "$i" "two words $i" '*' '' > "out$i" 2> "err$i"; echo $? > "rc$i" ) &
done
wait
`, "PATH="+path, "LOG="+log, "WORK="+work)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	for i := 1; i <= 6; i++ {
		want := fmt.Sprintf("args: [%d] [two words %d] [*] []\ninput %d\nline two\n", i, i, i)
		if got := readFile(t, filepath.Join(work, fmt.Sprint("out", i))); got != want {
			t.Errorf("call %d wrote %q, want %q", i, got, want)
		}
		if got := strings.TrimSpace(readFile(t, filepath.Join(work, fmt.Sprint("rc", i)))); got != fmt.Sprint(i) {
			t.Errorf("call %d exited %s, want %d", i, got, i)
		}
		if got := readFile(t, filepath.Join(work, fmt.Sprint("err", i))); got != "" {
			t.Errorf("call %d stderr: %q", i, got)
		}
	}
	most, n := maxOverlap(t, readFile(t, log))
	if n != 6 || most != 2 {
		t.Fatalf("%d calls, at most %d at once; want 6, and 2 at once", n, most)
	}
	// The shim used the pool named codex.
	if _, err := os.Stat(filepath.Join(e.dir, "codex")); err != nil {
		t.Errorf("the shim did not use the codex pool: %v", err)
	}
}

func TestShimRefusesOthersFilesAndWarns(t *testing.T) {
	e := newEnv(t)
	realDir, binDir, path := shimSetup(t)

	// A file shim did not write is never overwritten nor removed.
	mine := filepath.Join(binDir, "claude")
	os.WriteFile(mine, []byte("#!/bin/sh\necho mine\n"), 0o755)
	r := e.runEnv(e.with("PATH="+path), "", "shim", "claude", "--bin-dir", binDir)
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Fatalf("shim over a foreign file: exit %d, %q", r.code, r.stderr)
	}
	r = e.run("shim", "--remove", "claude", "--bin-dir", binDir)
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to remove") {
		t.Fatalf("shim --remove of a foreign file: exit %d, %q", r.code, r.stderr)
	}
	if got := readFile(t, mine); got != "#!/bin/sh\necho mine\n" {
		t.Fatalf("the foreign file changed: %q", got)
	}

	// Warnings: the bin dir not on PATH; after the real program.
	r = e.runEnv(e.with("PATH="+realDir+":/usr/bin:/bin"), "", "shim", "codex", "--bin-dir", binDir)
	if r.code != 0 || !strings.Contains(r.stderr, "is not on PATH") {
		t.Fatalf("bin dir not on PATH: exit %d, %q", r.code, r.stderr)
	}
	r = e.runEnv(e.with("PATH="+realDir+":"+binDir+":/usr/bin:/bin"), "", "shim", "codex", "--bin-dir", binDir)
	if r.code != 0 || !strings.Contains(r.stderr, "comes before "+binDir) {
		t.Fatalf("bin dir after the real codex: exit %d, %q", r.code, r.stderr)
	}
	r = e.runEnv(e.with("PATH="+binDir+":/usr/bin:/bin"), "", "shim", "codex", "--bin-dir", binDir)
	if r.code != 0 || !strings.Contains(r.stderr, "no real codex") {
		t.Fatalf("no real codex: exit %d, %q", r.code, r.stderr)
	}
	// Rewriting its own shim is fine; so is running it with no real codex
	// on PATH, which fails like a missing command.
	out, err := e.sh("codex 0", "PATH="+binDir+":/usr/bin:/bin")
	if err == nil || !strings.Contains(out, "no codex on PATH other than llmslots shims") {
		t.Fatalf("shim without a real codex: %v, %q", err, out)
	}

	// Two shim directories: each skips the other's shim.
	otherBin := t.TempDir()
	if r := e.runEnv(e.with("PATH="+path), "", "shim", "codex", "--max", "1", "--bin-dir", otherBin); r.code != 0 {
		t.Fatalf("second shim: %q", r.stderr)
	}
	out, err = e.sh("echo hi | codex 0 x", "PATH="+otherBin+":"+binDir+":"+realDir+":/usr/bin:/bin", "LOG="+filepath.Join(t.TempDir(), "log"))
	if err != nil || out != "args: [0] [x]\nhi\n" {
		t.Fatalf("through two shims: %v, %q", err, out)
	}

	r = e.run("shim", "--remove", "codex", "--bin-dir", binDir)
	if r.code != 0 {
		t.Fatalf("shim --remove: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(binDir, "codex")); !os.IsNotExist(err) {
		t.Fatalf("the shim is still there: %v", err)
	}
	if r := e.run("shim", "--remove", "codex", "--bin-dir", binDir); r.code != 1 || !strings.Contains(r.stderr, "no shim") {
		t.Fatalf("removing a missing shim: exit %d, %q", r.code, r.stderr)
	}
}
