package clock

// x/sys/unix lacks NetBSD's CLOCK_MONOTONIC: 3, in <sys/time.h>.
const clockMonotonic = 3
