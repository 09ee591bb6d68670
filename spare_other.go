//go:build !unix

package llmslots

import (
	"io/fs"
	"os"
)

// Spares (see spare_unix.go) need hard links that keep a lock; without
// them (Windows), every acquire creates its own slot file and takeSpare
// always returns nil.
type spare struct {
	f      *os.File
	info   fs.FileInfo
	broken bool
}

func (p *Pool) takeSpare() *spare          { return nil }
func (s *spare) record(rec []byte)         {}
func (s *spare) publish(path string) error { return nil }
func (s *spare) release(path string) error { return nil }
func (s *spare) markSpent()                {}
func linksRefused(err error) bool          { return false }
func putSpare(s *spare)                    {}
func sweepSpares(dir string) int           { return 0 }
