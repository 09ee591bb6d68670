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

// Serving the line (serve.go) needs spares: elsewhere every ticket is a
// file of its own, and every release deletes its slot file.
type serving struct{}

func (p *Pool) servedTicket(*ticket, int64, int, *spare) bool { return false }
func (t *ticket) served() int                                 { return -1 }
func (t *ticket) renamed() bool                               { return false }
func (t *ticket) keepAhead(string)                            {}
func (t *ticket) dropAhead()                                  {}
func (t *ticket) waitAheadLeft()                              {}
func (t *ticket) leaveServed()                                { t.serving = serving{} }
func (t *ticket) rejoin()                                     {}
func (p *Pool) servedGuard(int, int, *spare) *Guard           { return nil }
func (s *spare) poke()                                        {}
func (g *Guard) serveNext() bool                              { return false }
