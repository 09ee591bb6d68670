package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/llmslots/llmslots/internal/cli"
)

// The cluster pool (etcd) is served by a command of its own, llmslots-etcd,
// in the etcdslots module: this command stays free of etcd's client. run,
// status, pause and resume with --etcd ENDPOINTS, or with LLMSLOTS_ETCD
// set, hand their arguments to it (pause used not to, and paused a host's
// directory while saying so: issue 21, item 5).
const (
	clusterCommand = "llmslots-etcd"
	clusterInstall = "go install github.com/llmslots/llmslots/etcdslots/cmd/llmslots-etcd@latest (Go 1.26 or newer), or in a clone of the repository: go install ./etcdslots/cmd/llmslots-etcd"
	envEtcd        = "LLMSLOTS_ETCD"
	etcdUsage      = "use the cluster pool in the etcd cluster at `ENDPOINTS` (comma-separated): runs llmslots-etcd with the same arguments; default: $LLMSLOTS_ETCD unless --dir or --shim is given; \"\" for the host's pool"
)

// valueFlags are the flags of run, status, pause and resume, and of llmslots-etcd's,
// that take a value as the next argument: wantsCluster skips those values.
var valueFlags = map[string]bool{
	"pool": true, "dir": true, "max": true, "wait": true, "label": true, "shim": true,
	"detect": true, "throttled-on": true, "throttled-exit": true, "for": true, "reason": true,
	"etcd": true, "prefix": true, "ttl": true, "grace": true, "local-max": true,
	"cacert": true, "cert": true, "key": true, "user": true, "timeout": true,
}

// wantsCluster reports whether args, a run's, status's, pause's or resume's, ask for the
// cluster pool: a non-empty --etcd among the flags (before "--" or the
// command), else a non-empty LLMSLOTS_ETCD unless --dir or --shim names a
// host's pool (so shims keep working with LLMSLOTS_ETCD set). --etcd ""
// keeps the host's pool whatever the environment says.
func wantsCluster(args []string) bool {
	hostPool := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			break
		}
		flagName, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if flagName == "etcd" {
			if !hasValue && i+1 < len(args) {
				value = args[i+1]
			}
			return value != ""
		}
		if flagName == "dir" || flagName == "shim" {
			hostPool = true
		}
		if valueFlags[flagName] && !hasValue {
			i++
		}
	}
	return !hostPool && os.Getenv(envEtcd) != ""
}

// runCluster hands "llmslots SUB ARGS" to llmslots-etcd and returns its
// exit status; on Unix it replaces this process and returns only on
// failure.
func runCluster(sub string, args []string, stderr io.Writer) int {
	path, err := findClusterCommand()
	if err != nil {
		return failure(stderr, exitError, fmt.Errorf("llmslots: a cluster pool (--etcd or %s) needs %s, which is neither next to llmslots nor on PATH (%v); install it: %s", envEtcd, clusterCommand, err, clusterInstall))
	}
	argv := append([]string{clusterCommand, sub}, args...)
	code, err := execCluster(path, argv)
	if err != nil {
		return failure(stderr, cli.ExecFailureCode(err), fmt.Errorf("llmslots: cannot run %s: %w", path, err))
	}
	return code
}

// findClusterCommand looks for llmslots-etcd next to this executable, then
// on PATH.
func findClusterCommand() (string, error) {
	exe := clusterCommand
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	if self, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(self); err == nil {
			self = real
		}
		p := filepath.Join(filepath.Dir(self), exe)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode()&0o111 != 0) {
			return p, nil
		}
	}
	p, err := exec.LookPath(clusterCommand)
	if errors.Is(err, exec.ErrDot) {
		err = nil // as for run's command: the user put "." on PATH
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		err = errors.New("not found")
	}
	return p, err
}
