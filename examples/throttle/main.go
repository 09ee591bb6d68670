// Command throttle is a CLI that runs an LLM command under a slot, sees
// the provider's 429 in what the command wrote ("429", "rate limit",
// "usage limit"), and reports it with Guard.Throttled and the provider's
// retry hint. Every process of the pool then pauses for that long and the
// pool's limit drops; this one gives its slot back and retries, once the
// pause lets it.
//
//	go run ./examples/throttle                     # a stand-in provider, on a private pool
//	go run ./examples/throttle codex exec "review the diff in HEAD"
//
// With a command, it uses the named pool "codex" of 3 slots. Without one,
// a stand-in answers 429 ("try again in 2s") once, then succeeds; it runs
// on a temporary pool, so the demonstration never pauses the user's real
// slots. `llmslots run --throttled-on REGEX` does the same for any command.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
)

// standIn fails with a 429 the first time it runs (no file $STANDIN_MARK
// yet), as codex does when the account's rate limit is reached.
const standIn = `if [ -e "$STANDIN_MARK" ]; then echo "review: looks good"; exit 0; fi
: > "$STANDIN_MARK"
echo "ERROR: exceeded retry limit, last status: 429 Too Many Requests; rate limit reached, please try again in ${STANDIN_HINT:-2s}" >&2
exit 1`

func main() {
	if err := cli(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "throttle:", err)
		os.Exit(1)
	}
}

func cli(argv []string) error {
	if len(argv) > 0 {
		pool, err := llmslots.NamedPool("codex", llmslots.WithLabel("examples/throttle"))
		if err != nil {
			return err
		}
		return run(pool, 3, argv, os.Stdout, os.Stderr, 3)
	}
	tmp, err := os.MkdirTemp("", "llmslots-throttle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pool, err := llmslots.NewPool(tmp)
	if err != nil {
		return err
	}
	os.Setenv("STANDIN_MARK", filepath.Join(tmp, "standin-ran"))
	return run(pool, 3, []string{"sh", "-c", standIn}, os.Stdout, os.Stderr, 3)
}

// run runs argv under a slot of pool (max slots), up to tries times while
// the provider throttles it. out and errOut are files, not buffers, on
// purpose: the child writes to them itself, so if this program is killed
// the child, which keeps the slot, keeps its output too (a pipe to a dead
// parent would kill it with SIGPIPE; see Guard.Command).
func run(pool *llmslots.Pool, max int, argv []string, out, errOut *os.File, tries int) error {
	for try := 1; ; try++ {
		asked := time.Now()
		g, err := pool.Acquire(max, 10*time.Minute) // waits out a pause too
		if err != nil {
			return err
		}
		fmt.Fprintf(errOut, "throttle: try %d holds slot %d after %v in line\n", try, g.SlotID(), time.Since(asked).Round(100*time.Millisecond))
		said, err := runLogged(g, argv, out, errOut)
		line := throttledLine(said)
		if err == nil || line == "" {
			g.Release()
			return err
		}
		hint := retryHint(line) // 0 if none: the pool backs off by itself
		// On the guard: its grant time tells the pool whether this 429 is
		// news or the congestion it has already answered.
		g.Throttled(hint)
		g.Release() // a retry waits behind those already in line
		if try == tries {
			return fmt.Errorf("throttled %d times: %w", tries, err)
		}
		fmt.Fprintf(errOut, "throttle: throttled (retry after %v); the pool is paused, trying again\n", hint)
	}
}

// runLogged runs argv under g with its stdout on out and its stderr in a
// temporary file, which it then copies to errOut and returns.
func runLogged(g *llmslots.Guard, argv []string, out, errOut *os.File) (string, error) {
	log, err := os.CreateTemp("", "llmslots-throttle-stderr-")
	if err != nil {
		return "", err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd := g.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, out, log
	runErr := cmd.Run()
	said, err := os.ReadFile(log.Name())
	errOut.Write(said)
	return string(said), errors.Join(runErr, err)
}

// throttled matches what codex and claude print when the provider refuses
// for a rate or usage limit.
var throttled = regexp.MustCompile(`(?i)\b429\b|rate.?limit|usage limit|too many requests`)

// throttledLine returns the first line of said that says it was throttled,
// "" if none.
func throttledLine(said string) string {
	for l := range strings.Lines(said) {
		if throttled.MatchString(l) {
			return l
		}
	}
	return ""
}

// retryIn is the provider's hint: "try again in 20s", "retry after 3 seconds".
var retryIn = regexp.MustCompile(`(?i)(?:try again|retry) (?:in|after) (\d+)\s*(ms|s|sec|seconds?|m|min|minutes?|h|hours?)\b`)

// retryHint returns the hint in line, 0 if it has none.
func retryHint(line string) time.Duration {
	m := retryIn.FindStringSubmatch(line)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	unit := time.Hour
	switch u := strings.ToLower(m[2]); {
	case u == "ms":
		unit = time.Millisecond
	case u[0] == 's':
		unit = time.Second
	case u[0] == 'm':
		unit = time.Minute
	}
	return time.Duration(n) * unit
}
