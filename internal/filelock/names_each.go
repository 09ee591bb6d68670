//go:build !linux

package filelock

// EachName calls fn with each name in the directory dir, in no particular
// order; the name is valid only during the call. Here it is Names, a
// string for each name; Linux reads the entries in place (names_linux.go).
func EachName(dir string, fn func(name []byte)) error {
	names, err := Names(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		fn([]byte(n))
	}
	return nil
}
