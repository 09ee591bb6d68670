package clock

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A process in a time namespace whose monotonic clock is shifted reads
// the host's clock: a reading taken there falls between two taken here.
// Before, a process under `unshare -T --monotonic -1000` read 1000 s less,
// and so arrived 4th was served 1st.
func TestMonotonicIsTheHostsInATimeNamespace(t *testing.T) {
	if os.Getenv("CLOCK_TEST_PRINT") != "" {
		os.Stdout.WriteString(strconv.FormatInt(Monotonic(), 10))
		os.Exit(0)
	}
	if err := exec.Command("unshare", "-T", "--monotonic", "-1000", "--fork", "true").Run(); err != nil {
		t.Skipf("no time namespaces here: %v", err)
	}
	for _, shift := range []string{"-1000", "1000"} {
		before := Monotonic()
		cmd := exec.Command("unshare", "-T", "--monotonic", shift, "--fork", os.Args[0], "-test.run=^TestMonotonicIsTheHostsInATimeNamespace$")
		cmd.Env = append(os.Environ(), "CLOCK_TEST_PRINT=1")
		out, err := cmd.Output()
		after := Monotonic()
		if err != nil {
			t.Fatal(err)
		}
		there, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", out)
		}
		if there < before || there > after {
			t.Errorf("shift %s s: the namespace read %v, outside this process's %v..%v", shift, time.Duration(there), time.Duration(before), time.Duration(after))
		}
	}
}
