package llmslots

import "golang.org/x/sys/unix"

// golang.org/x/sys/unix has no F_DUPFD_CLOEXEC for DragonFly; its value
// there is 17 (<sys/fcntl.h>).
const (
	clockMonotonic = unix.CLOCK_MONOTONIC
	fDupfdCloexec  = 17
)
