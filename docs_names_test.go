package llmslots

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The documentation of what the package exports is read on pkg.go.dev,
// where its unexported names mean nothing: no exported declaration, field
// or method names one. Only camelCase unexported names are looked for, so
// that words such as "record" or "group" stay prose.
func TestExportedDocsNameNoUnexportedIdentifier(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatal("no source files")
	}
	unexported := map[string]bool{}
	camel := func(name string) bool {
		return !ast.IsExported(name) && strings.ContainsFunc(name, unicode.IsUpper)
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && camel(d.Name.Name) {
					unexported[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if camel(s.Name.Name) {
							unexported[s.Name.Name] = true
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if camel(n.Name) {
								unexported[n.Name] = true
							}
						}
					}
				}
			}
		}
	}
	word := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	check := func(where string, doc *ast.CommentGroup) {
		if doc == nil {
			return
		}
		for _, w := range word.FindAllString(doc.Text(), -1) {
			if unexported[w] {
				t.Errorf("%s: the doc of %s names the unexported %s", fset.Position(doc.Pos()), where, w)
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && (d.Recv == nil || recvExported(d.Recv)) {
					check(d.Name.Name, d.Doc)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						doc := s.Doc
						if doc == nil {
							doc = d.Doc
						}
						check(s.Name.Name, doc)
						if st, ok := s.Type.(*ast.StructType); ok {
							for _, fld := range st.Fields.List {
								for _, n := range fld.Names {
									if n.IsExported() {
										check(s.Name.Name+"."+n.Name, fld.Doc)
										check(s.Name.Name+"."+n.Name, fld.Comment)
									}
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								doc := s.Doc
								if doc == nil {
									doc = d.Doc
								}
								check(n.Name, doc)
							}
						}
					}
				}
			}
		}
	}
}

// recvExported reports whether a method's receiver type is exported.
func recvExported(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	t := recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
