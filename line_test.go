package llmslots

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// lineAhead and lineFirst keep, from one unordered read of the queue
// directory, what sorting the whole line gives: checked against a sort,
// on lines of every length up to past a directory read's buffer, with
// other files among the tickets and drafts, in random creation order.
func TestLineScansAgreeWithTheSortedLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 4, 5, 9, 50, 600} {
		dir := t.TempDir()
		var line []string // tickets and drafts, by key
		for i := range n {
			key := fmt.Sprintf("%020d-%010d-%06d", rng.Uint64N(1e12), 100+i, 1)
			prefix := ticketPrefix
			if rng.IntN(5) == 0 {
				prefix = draftPrefix
			}
			name := prefix + key
			if rng.IntN(3) == 0 {
				name += "-s4-4026531836" // a servable ticket's suffix
			}
			line = append(line, name)
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(4) == 0 { // not in line
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("x-%d", i)), nil, 0o600)
			}
		}
		os.WriteFile(filepath.Join(dir, waitersFileName), nil, 0o600)
		key := func(s string) string { return s[len(ticketPrefix):] }
		slices.SortFunc(line, func(a, b string) int {
			switch {
			case key(a) < key(b):
				return -1
			case key(a) > key(b):
				return 1
			}
			return 0
		})

		first, second, err := lineFirst(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantFirst, wantSecond := "", ""
		if n > 0 {
			wantFirst = line[0]
		}
		if n > 1 {
			wantSecond = line[1]
		}
		if first != wantFirst || second != wantSecond {
			t.Fatalf("%d in line: lineFirst %q, %q; want %q, %q", n, first, second, wantFirst, wantSecond)
		}

		// As seen by each one in line, and by one behind them all.
		for i := 0; i <= n; i++ {
			mine := "~" // after every key
			if i < n {
				mine = key(line[i])
			}
			near, first, more, err := lineAhead(dir, mine)
			if err != nil {
				t.Fatal(err)
			}
			ahead := slices.Clone(line[:i])
			slices.Reverse(ahead)
			want := ahead[:min(len(ahead), aheadKept)]
			wantFirst := ""
			if i > 0 {
				wantFirst = line[0]
			}
			if !slices.Equal(near, want) || first != wantFirst || more != (len(ahead) > aheadKept) {
				t.Fatalf("%d in line, at %d: lineAhead %q, %q, %v; want %q, %q, %v", n, i, near, first, more, want, wantFirst, len(ahead) > aheadKept)
			}
		}
	}
	// A queue directory gone is an empty line, as for queueNames.
	gone := filepath.Join(t.TempDir(), "gone")
	if near, first, more, err := lineAhead(gone, "~"); err != nil || near != nil || first != "" || more {
		t.Fatalf("a missing directory: %q, %q, %v, %v", near, first, more, err)
	}
	if first, second, err := lineFirst(gone); err != nil || first != "" || second != "" {
		t.Fatalf("a missing directory: %q, %q, %v", first, second, err)
	}
}
