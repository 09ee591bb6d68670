package clock

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
)

// nsOffset is this process's time namespace's CLOCK_MONOTONIC offset in
// nanoseconds (unshare -T), without which a waiter there would sort out of
// turn. The file reads "monotonic -1000 0" (seconds, nanoseconds); none: 0.
var nsOffset = sync.OnceValue(func() int64 {
	f, err := os.Open("/proc/self/timens_offsets")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[0] != "monotonic" {
			continue
		}
		secs, err1 := strconv.ParseInt(fields[1], 10, 64)
		nanos, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil {
			return 0
		}
		return secs*1e9 + nanos
	}
	return 0
})
