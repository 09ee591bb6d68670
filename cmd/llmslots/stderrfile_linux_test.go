package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// run --throttled-on copies the command's stderr from a file and frees
// what it copied: a chatty command does not fill /tmp (or, on tmpfs, the
// memory) with all it ever wrote (found by a review of issue 22: 200 MB
// stayed allocated).
func TestThrottledOnFreesTheCopiedStderr(t *testing.T) {
	e := newEnv(t)
	const written = 20 << 20
	script := `yes 'a line of stderr' | head -c ` + strconv.Itoa(written) + ` >&2; echo $$; exec cat >/dev/null`
	r := e.start("run", "--max", "1", "--throttled-on", "429", "--", "sh", "-c", script)
	copied := make(chan int)
	go func() {
		n := 0
		for r.errOut.Scan() {
			n += len(r.errOut.Text()) + 1
			if n > written-64 { // all but the last line, which head cut
				copied <- n
				return
			}
		}
	}()
	pid := r.line()
	<-copied
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+pid+"/fd/2", &st); err != nil {
		t.Fatal(err)
	}
	if st.Size < written {
		t.Fatalf("the command's stderr is %d bytes, want %d: not the file it wrote", st.Size, written)
	}
	if held := st.Blocks * 512; held > 4<<20 {
		t.Fatalf("after %d bytes copied, the command's stderr file still holds %d bytes", written, held)
	}
	link, _ := os.Readlink("/proc/" + pid + "/fd/2")
	if !strings.Contains(link, "(deleted)") {
		t.Errorf("the command's stderr is %q, want an unlinked file", link)
	}
	r.stdin.Close()
}
