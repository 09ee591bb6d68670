//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots/etcdslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The command under test is this test binary, which runs main when mainEnv
// is set: a real process, stopped by a real signal.
const mainEnv = "LLMSLOTS_DEV_ETCD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		main()
	}
	os.Exit(m.Run())
}

// lines sends r's lines on a channel, closed at EOF.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch
}

// next returns the first line from ch that has prefix.
func next(t *testing.T, ch <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("no line starting %q before the output ended", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line starting %q within 60s", prefix)
		}
	}
}

// The one command a user runs to try the cluster pool: it serves, says
// what to export, takes a slot for a client, and on SIGTERM or SIGINT
// stops and removes its data.
func TestDevEtcd(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir() // its data goes here, not in the user's /tmp
			addr := fmt.Sprintf("127.0.0.1:%d", etcdtest.FreePort())
			cmd := exec.Command(exe, "--listen", addr)
			cmd.Env = append(os.Environ(), mainEnv+"=1", "TMPDIR="+tmp)
			stdout, _ := cmd.StdoutPipe()
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			out, errs := lines(stdout), lines(stderr)
			if warn := next(t, errs, "llmslots-dev-etcd: "); !strings.Contains(warn, "NOT FOR PRODUCTION") {
				t.Errorf("first line on stderr: %q; want the warning", warn)
			}
			var dir string
			if _, err := fmt.Sscanf(next(t, errs, "llmslots-dev-etcd: data in "), "llmslots-dev-etcd: data in %s", &dir); err != nil || !strings.HasPrefix(dir, tmp) {
				t.Fatalf("data directory %q (%v); want one in %s", dir, err, tmp)
			}
			endpoint := strings.TrimPrefix(next(t, out, "export LLMSLOTS_ETCD="), "export LLMSLOTS_ETCD=")
			if endpoint != "http://"+addr {
				t.Errorf("endpoint %q; want http://%s", endpoint, addr)
			}

			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			p, err := etcdslots.NewPool(cli, "trying")
			if err != nil {
				t.Fatal(err)
			}
			g, err := p.Acquire(1, 5*time.Second)
			if err != nil {
				t.Fatalf("Acquire from the dev etcd: %v", err)
			}
			if err := g.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("data directory while serving: %v", err)
			}

			cmd.Process.Signal(sig)
			bye := next(t, errs, "llmslots-dev-etcd: ")
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after %v: %v; want 0", sig, err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("data directory %s after %v: %v; want it removed", dir, sig, err)
			}
			t.Logf("%s", bye)
		})
	}
}

// An address in use is said at once, with what to do.
func TestDevEtcdAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--listen", ln.Addr().String())
	cmd.Env = append(os.Environ(), mainEnv+"=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "choose another address with --listen") {
		t.Errorf("exit %v, %q; want 1, saying what to do", err, out)
	}
}
