package sysinfo

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Root reads /proc and /sys below Dir: "" for the real ones, a tree in tests.
type Root struct{ Dir string }

func (r Root) read(path string) string {
	data, err := os.ReadFile(filepath.Join(r.Dir, path))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// cgroupDirs returns, for a controller ("cpu", "memory"), the directories
// of this process's cgroup and its ancestors up to the mount point, where a
// limit on any applies: v2's, or those of a v1 hierarchy with the controller.
func (r Root) cgroupDirs(controller string) (dirs []string, v2 bool) {
	paths := map[string]string{} // "" for the v2 hierarchy, else a v1 controller
	for _, line := range strings.Split(r.read("/proc/self/cgroup"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			paths[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	// Find each hierarchy's mount point and the cgroup path it shows at
	// its root (in a container, often the container's own cgroup).
	var mountPoint, mountRoot, cgPath string
	for _, line := range strings.Split(r.read("/proc/self/mountinfo"), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch {
		case g[0] == "cgroup2" && paths[""] != "" && cgPath == "":
			mountRoot, mountPoint, cgPath, v2 = f[3], f[4], paths[""], true
		case g[0] == "cgroup" && paths[controller] != "" && slices.Contains(strings.Split(g[2], ","), controller):
			// A v1 controller hierarchy is more specific than v2's.
			mountRoot, mountPoint, cgPath, v2 = f[3], f[4], paths[controller], false
		}
	}
	if mountPoint == "" {
		return nil, false
	}
	rel, err := filepath.Rel(mountRoot, cgPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = "."
	}
	for d := filepath.Join(mountPoint, rel); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == mountPoint || d == "/" || d == "." {
			break
		}
	}
	return dirs, v2
}

// CPUQuota returns the tightest cgroup CPU quota, rounded up to whole
// CPUs, and where it comes from; 0 when there is none.
func (r Root) CPUQuota() (int, string) {
	dirs, v2 := r.cgroupDirs("cpu")
	best, desc := 0, ""
	for _, d := range dirs {
		var quota, period float64
		var file string
		if v2 {
			file = filepath.Join(d, "cpu.max")
			f := strings.Fields(r.read(file))
			if len(f) != 2 || f[0] == "max" {
				continue
			}
			quota, _ = strconv.ParseFloat(f[0], 64)
			period, _ = strconv.ParseFloat(f[1], 64)
		} else {
			file = filepath.Join(d, "cpu.cfs_quota_us")
			quota, _ = strconv.ParseFloat(r.read(file), 64)
			period, _ = strconv.ParseFloat(r.read(filepath.Join(d, "cpu.cfs_period_us")), 64)
		}
		if quota <= 0 || period <= 0 {
			continue
		}
		n := max(int(math.Ceil(quota/period)), 1)
		if best == 0 || n < best {
			best, desc = n, fmt.Sprintf("%s: %.0f/%.0f", file, quota, period)
		}
	}
	return best, desc
}

// MemAvailable returns the smaller of MemAvailable and the room the
// cgroup memory limits leave (limit minus working set, at every level), the
// limit that decided, if one did, and whether anything was known at all.
func (r Root) MemAvailable() (avail uint64, desc string, known bool) {
	if kb, ok := r.value("/proc/meminfo", "MemAvailable:"); ok {
		avail, known = kb*1024, true
	}
	dirs, v2 := r.cgroupDirs("memory")
	limitFile, usageFile, inactiveKey := "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
	if v2 {
		limitFile, usageFile, inactiveKey = "memory.max", "memory.current", "inactive_file"
	}
	for _, d := range dirs {
		limit, err := strconv.ParseUint(r.read(filepath.Join(d, limitFile)), 10, 64)
		// "max" (v2) fails to parse; v1's "no limit" is near 2^63.
		if err != nil || limit >= 1<<62 {
			continue
		}
		usage, _ := strconv.ParseUint(r.read(filepath.Join(d, usageFile)), 10, 64)
		// Usage counts page cache, mostly given back on demand (a container
		// that read a few files would look full): count the working set.
		inactive, _ := r.value(filepath.Join(d, "memory.stat"), inactiveKey)
		usage -= min(inactive, usage)
		room := limit - min(usage, limit)
		if !known || room < avail {
			avail, known = room, true
			desc = fmt.Sprintf("%s: %d, %s: %d", filepath.Join(d, limitFile), limit, usageFile, usage)
		}
	}
	return avail, desc, known
}

// value reads the number after key on a "key number ..." line of path.
func (r Root) value(path, key string) (uint64, bool) {
	for _, line := range strings.Split(r.read(path), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			n, err := strconv.ParseUint(f[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
