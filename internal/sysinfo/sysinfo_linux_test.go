package sysinfo

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzCgroupDirs feeds arbitrary /proc/self/cgroup and
// /proc/self/mountinfo files to the cgroup walk, through a fake root: no
// panic, no endless walk up the tree, no empty directory. The seeds are
// llmslots' FuzzSysRoot's.
func FuzzCgroupDirs(f *testing.F) {
	v2 := "30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	v1 := "40 20 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n41 20 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"
	f.Add("0::/job\n", v2)
	f.Add("4:memory:/job\n3:cpu,cpuacct:/job\n", v1)
	f.Add("0::/../../x\n", "1 2 3 /a/b /sys/fs/cgroup//x/ rw - cgroup2 c rw\n")
	f.Add("garbage", "garbage - x")
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, cgroup, mountinfo string) {
		for name, body := range map[string]string{"/proc/self/cgroup": cgroup, "/proc/self/mountinfo": mountinfo} {
			path := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r := Root{Dir: root}
		for _, c := range []string{"cpu", "memory"} {
			dirs, _ := r.cgroupDirs(c)
			if len(dirs) > 4096 {
				t.Fatalf("%d cgroup levels", len(dirs))
			}
			for _, d := range dirs {
				if d == "" {
					t.Fatalf("empty cgroup directory in %q", dirs)
				}
			}
		}
	})
}
