//go:build linux

package llmslots

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmslots/llmslots/internal/sysinfo"
)

// FuzzSysRoot feeds arbitrary /proc/self/cgroup, /proc/self/mountinfo,
// /proc/meminfo and cgroup files to DefaultMaxConcurrency's readers,
// through a fake root: no panic and an answer within 1..16 (or
// LLMSLOTS_MAX's value when that is valid). internal/sysinfo's
// FuzzCgroupDirs checks the walk up the cgroup tree on the same seeds.
func FuzzSysRoot(f *testing.F) {
	v2 := "30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	v1 := "40 20 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n41 20 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
	f.Add("0::/job\n", v2, "MemAvailable: 2097152 kB\n", "1073741824", "50000 100000", "inactive_file 1024\n", "")
	f.Add("4:memory:/job\n3:cpu,cpuacct:/job\n", v1, "MemAvailable: 99 kB\n", "9223372036854771712", "-1", "total_inactive_file 5\n", "3")
	f.Add("0::/../../x\n", "1 2 3 /a/b /sys/fs/cgroup//x/ rw - cgroup2 c rw\n", "MemAvailable:\n", "max", "max 100000", "inactive_file\n", "0")
	f.Add("garbage", "garbage - x", "", "", "0 0", "", "1025")
	// One root per fuzzing process, rewritten by each call (calls in one
	// process run one at a time): a new tree per call would cost more
	// than the code under test.
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, cgroup, mountinfo, meminfo, memLimit, cpuMax, memStat, env string) {
		write := func(name, body string) {
			path := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("/proc/self/cgroup", cgroup)
		write("/proc/self/mountinfo", mountinfo)
		write("/proc/meminfo", meminfo)
		// Limits for the cgroup the seeds name, under both layouts.
		for _, d := range []string{"/sys/fs/cgroup/job", "/sys/fs/cgroup/memory/job", "/sys/fs/cgroup/cpu/job"} {
			write(d+"/memory.max", memLimit)
			write(d+"/memory.limit_in_bytes", memLimit)
			write(d+"/memory.current", "1048576")
			write(d+"/memory.usage_in_bytes", "1048576")
			write(d+"/memory.stat", memStat)
			write(d+"/cpu.max", cpuMax)
			write(d+"/cpu.cfs_quota_us", cpuMax)
			write(d+"/cpu.cfs_period_us", "100000")
		}
		r := sysinfo.Root{Dir: root}
		if q, _ := r.CPUQuota(); q < 0 {
			t.Fatalf("cpu quota %d", q)
		}
		c := measureConcurrency(r, env)
		if c.Max < 1 || c.Max > MaxSlots || c.Source == "computed" && c.Max > defaultCap {
			t.Fatalf("max %d from %+v", c.Max, c)
		}
		if c.Source == EnvMax && strings.TrimSpace(env) == "" {
			t.Fatalf("LLMSLOTS_MAX=%q decided", env)
		}
		if c.ByMemory < 0 || c.ByMemory > MaxSlots || c.CPUs < 1 {
			t.Fatalf("figures %+v", c)
		}
	})
}
