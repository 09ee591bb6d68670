//go:build unix && !netbsd

package llmslots

import "golang.org/x/sys/unix"

// Constants that golang.org/x/sys/unix names on most systems; see
// consts_netbsd.go for NetBSD.
const (
	clockMonotonic = unix.CLOCK_MONOTONIC
	fDupfdCloexec  = unix.F_DUPFD_CLOEXEC
)
