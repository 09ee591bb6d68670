//go:build ignore

// Modproxy publishes one version of a module from a source tree into a
// file-based module proxy (GOPROXY=file://DIR), as a module proxy serves
// it: DIR/MODULE/@v/{list,VERSION.info,VERSION.mod,VERSION.zip}. .ci/run
// uses it to build etcdslots without go.work, against the core module at
// the version etcdslots/go.mod requires, before that version is published.
//
//	git ls-files -z | go run etcdslots/.ci/modproxy.go -module M -version V -dir SRC -out DIR
//
// It reads the files to publish, NUL-separated and relative to SRC, from
// stdin, and leaves out what the module zip rules do: files in a
// subdirectory holding its own go.mod (another module), in vendor
// directories, in VCS directories, and anything not a regular file.
package main

import (
	"archive/zip"
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	module := flag.String("module", "", "the module path")
	version := flag.String("version", "", "the version to publish, such as v0.1.0")
	dir := flag.String("dir", ".", "the module's root directory")
	out := flag.String("out", "", "the proxy's root directory")
	flag.Parse()
	if *module == "" || *version == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := publish(*module, *version, *dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func publish(module, version, dir, out string) error {
	files, err := moduleFiles(dir)
	if err != nil {
		return err
	}
	vdir := filepath.Join(out, module, "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".mod"), mod, 0o644); err != nil {
		return err
	}
	info, _ := json.Marshal(map[string]any{"Version": version, "Time": time.Now().UTC().Format(time.RFC3339)})
	if err := os.WriteFile(filepath.Join(vdir, version+".info"), info, 0o644); err != nil {
		return err
	}
	list, err := os.OpenFile(filepath.Join(vdir, "list"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintln(list, version)
	if err := list.Close(); err != nil {
		return err
	}
	z, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		return err
	}
	zw := zip.NewWriter(z)
	for _, name := range files {
		if err := addFile(zw, module+"@"+version+"/"+name, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			z.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		z.Close()
		return err
	}
	return z.Close()
}

// moduleFiles reads the candidate files from stdin and keeps those the
// module zip holds.
func moduleFiles(dir string) ([]string, error) {
	var files []string
	otherModule := map[string]bool{} // directory -> has its own go.mod
	in := bufio.NewReader(os.Stdin)
	for {
		name, err := in.ReadString(0)
		if err == io.EOF && name == "" {
			break
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		name = path.Clean(filepath.ToSlash(strings.TrimSuffix(name, "\x00"))) // find's ./x is x
		if name == "." || excluded(dir, name, otherModule) {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree
			}
			return nil, err
		}
		if fi.Mode().IsRegular() {
			files = append(files, name)
		}
	}
	return files, nil
}

// excluded reports whether a directory of name's path is another
// module's root, a vendor directory or a VCS directory.
func excluded(dir, name string, otherModule map[string]bool) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		switch path.Base(d) {
		case "vendor", ".git", ".hg", ".svn", ".bzr":
			return true
		}
		has, seen := otherModule[d]
		if !seen {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(d), "go.mod"))
			has = err == nil
			otherModule[d] = has
		}
		if has {
			return true
		}
	}
	return false
}

func addFile(zw *zip.Writer, zipName, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := zw.Create(zipName)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
