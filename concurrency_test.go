//go:build linux

package llmslots

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/llmslots/llmslots/internal/sysinfo"
)

// fakeSys lays out /proc and /sys files below a temporary root.
func fakeSys(t *testing.T, files map[string]string) sysinfo.Root {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		path := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return sysinfo.Root{Dir: root}
}

const gib = 1 << 30

func TestDefaultConcurrencyFromCPUsMemoryAndCgroups(t *testing.T) {
	cpus := runtime.NumCPU()
	v2Mount := "30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	v1Mount := "40 20 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
		"41 20 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
	meminfo := func(gb int) string {
		return "MemTotal: 99999999 kB\nMemAvailable: " + itoa(int64(gb)*1024*1024) + " kB\n"
	}
	cases := []struct {
		name    string
		files   map[string]string
		env     string
		want    int
		wantSrc string
	}{
		{"no cgroup limits: CPUs, capped at 16", map[string]string{
			"/proc/meminfo": meminfo(64), "/proc/self/cgroup": "0::/\n", "/proc/self/mountinfo": v2Mount,
		}, "", min(cpus, 16), "computed"},
		{"memory limits: 1 GiB available fits 2", map[string]string{
			"/proc/meminfo": meminfo(1), "/proc/self/cgroup": "0::/\n", "/proc/self/mountinfo": v2Mount,
		}, "", min(cpus, 2), "computed"},
		{"v2 memory.max minus memory.current, on an ancestor", map[string]string{
			"/proc/meminfo":                        meminfo(64),
			"/proc/self/cgroup":                    "0::/user.slice/job\n",
			"/proc/self/mountinfo":                 v2Mount,
			"/sys/fs/cgroup/user.slice/memory.max": itoa(2 * gib), "/sys/fs/cgroup/user.slice/memory.current": itoa(gib),
			"/sys/fs/cgroup/user.slice/job/memory.max": "max",
		}, "", min(cpus, 2), "computed"},
		{"v2 cpu.max quota", map[string]string{
			"/proc/meminfo": meminfo(64), "/proc/self/cgroup": "0::/job\n", "/proc/self/mountinfo": v2Mount,
			"/sys/fs/cgroup/job/cpu.max": "50000 100000",
		}, "", 1, "computed"},
		{"v1 memory limit in a container's own view", map[string]string{
			"/proc/meminfo":                               meminfo(64),
			"/proc/self/cgroup":                           "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n",
			"/proc/self/mountinfo":                        strings.ReplaceAll(v1Mount, " / /sys", " /docker/abc /sys"),
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": itoa(700 << 20), "/sys/fs/cgroup/memory/memory.usage_in_bytes": "0",
			"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000",
		}, "", min(cpus, 2), "computed"},
		{"v1 no limit is a huge number", map[string]string{
			"/proc/meminfo": meminfo(64), "/proc/self/cgroup": "4:memory:/\n", "/proc/self/mountinfo": v1Mount,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
		}, "", min(cpus, 16), "computed"},
		{"page cache is not counted as used (v2)", map[string]string{
			"/proc/meminfo": meminfo(64), "/proc/self/cgroup": "0::/job\n", "/proc/self/mountinfo": v2Mount,
			"/sys/fs/cgroup/job/memory.max": itoa(4 * gib), "/sys/fs/cgroup/job/memory.current": itoa(4*gib - 100<<20),
			"/sys/fs/cgroup/job/memory.stat": "anon 104857600\nfile 4000000000\ninactive_file " + itoa(4*gib-200<<20) + "\n",
		}, "", min(cpus, 11), "computed"},
		{"page cache is not counted as used (v1)", map[string]string{
			"/proc/meminfo": meminfo(64), "/proc/self/cgroup": "4:memory:/\n", "/proc/self/mountinfo": v1Mount,
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": itoa(gib), "/sys/fs/cgroup/memory/memory.usage_in_bytes": itoa(gib),
			"/sys/fs/cgroup/memory/memory.stat": "cache 1\ntotal_inactive_file " + itoa(gib) + "\n",
		}, "", min(cpus, 2), "computed"},
		{"a full cgroup still gives 1", map[string]string{
			"/proc/meminfo": meminfo(64), "/proc/self/cgroup": "0::/job\n", "/proc/self/mountinfo": v2Mount,
			"/sys/fs/cgroup/job/memory.max": itoa(gib), "/sys/fs/cgroup/job/memory.current": itoa(2 * gib),
		}, "", 1, "computed"},
		{"nothing readable: CPUs alone", map[string]string{}, "", min(cpus, 16), "computed"},
		{"LLMSLOTS_MAX wins", map[string]string{"/proc/meminfo": meminfo(1)}, "7", 7, EnvMax},
		{"LLMSLOTS_MAX spaces trimmed", map[string]string{}, " 3 ", 3, EnvMax},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := measureConcurrency(fakeSys(t, c.files), c.env)
			if got.Max != c.want || got.Source != c.wantSrc || got.EnvError != "" {
				t.Fatalf("got %+v; want max %d from %s", got, c.want, c.wantSrc)
			}
		})
	}
}

func TestInvalidLLMSLOTS_MAXIsIgnoredAndReported(t *testing.T) {
	computed := measureConcurrency(sysinfo.Root{}, "").Max
	for _, env := range []string{"0", "-2", "1025", "four", "4.5", "0x10", "99999999999999999999"} {
		got := measureConcurrency(sysinfo.Root{}, env)
		if got.Max != computed || got.Source != "computed" || !strings.Contains(got.EnvError, "ignoring "+`"`+env+`"`) {
			t.Errorf("%s=%q: %+v", EnvMax, env, got)
		}
	}
	// Through the public function, the complaint reaches the logger.
	var logs strings.Builder
	SetLogger(debugLogger(&logs))
	defer SetLogger(nil)
	t.Setenv(EnvMax, "lots")
	if n := DefaultMaxConcurrency(); n != computed {
		t.Fatalf("DefaultMaxConcurrency() = %d; want %d", n, computed)
	}
	if !strings.Contains(logs.String(), `ignoring \"lots\"`) {
		t.Fatalf("log: %s", logs.String())
	}
}

func TestDefaultConcurrencyOnThisMachine(t *testing.T) {
	t.Setenv(EnvMax, "")
	c := ExplainMaxConcurrency()
	t.Logf("this machine: %+v", c)
	if c.Max < 1 || c.Max > 16 || c.CPUs < 1 || c.CPUs > runtime.NumCPU() || !c.MemKnown {
		t.Fatalf("%+v", c)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
