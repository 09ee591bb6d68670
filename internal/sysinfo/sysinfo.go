// Package sysinfo reads what the default pool size is computed from: the
// CPUs and memory available to this process, as cgroup limits lower them.
package sysinfo
