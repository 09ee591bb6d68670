package clock

// golang.org/x/sys/unix has no CLOCK_MONOTONIC for NetBSD; its value there
// is 3 (<sys/time.h>).
const clockMonotonic = 3
