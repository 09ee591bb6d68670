//go:build !linux

package llmslots

import (
	"io/fs"
	"os"
)

// Spares (see spare_linux.go) are Linux's: elsewhere the package cannot
// tell a network filesystem, on which a hard link may report failure
// after it succeeded, and Windows has no lock a hard link keeps. Every
// acquire creates its own slot file, and takeSpare always returns nil.
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
func (s *spare) handOver() error           { return nil }
func linksRefused(err error) bool          { return false }
func putSpare(s *spare)                    {}
func sweepSpares(dir string) int           { return 0 }
