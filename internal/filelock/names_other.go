//go:build !(linux || freebsd || openbsd || netbsd || dragonfly)

package filelock

import "os"

// Names returns the names in the directory dir, in no particular order,
// through os.File's Readdirnames (see names_bsd.go for why macOS is
// here).
func Names(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}
