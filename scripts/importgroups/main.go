// Command importgroups checks that every Go file of the module groups its
// imports as the project's style asks: standard library, then third-party
// modules, then this module's packages, each group separated by a blank
// line and sorted (gofmt sorts within a group; goimports does not split a
// mixed group). With -w it rewrites the import blocks that are out of
// order; blocks with comments are reported, never rewritten.
//
//	go run ./scripts/importgroups        list the files out of order (exit 1 if any)
//	go run ./scripts/importgroups -w     fix them
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const module = "github.com/espdeck/espdeck"

// class orders the groups: standard library, third party, ours.
func class(path string) int {
	if path == module || strings.HasPrefix(path, module+"/") {
		return 2
	}
	if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
		return 1
	}
	return 0
}

func main() {
	write := flag.Bool("w", false, "rewrite the files out of order")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	bad := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		msg, err := check(path, *write)
		if err != nil {
			return err
		}
		if msg != "" {
			bad++
			fmt.Println(msg)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "importgroups:", err)
		os.Exit(2)
	}
	if bad > 0 && !*write {
		fmt.Println("imports must be grouped: standard library, third party, then " + module + "; run: go run ./scripts/importgroups -w")
		os.Exit(1)
	}
}

// check returns a message when path's imports are out of order, after
// fixing them when write is set.
func check(path string, write bool) (string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return "", err
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.IMPORT || !gd.Lparen.IsValid() || len(gd.Specs) < 2 {
			continue
		}
		if ordered(fset, gd) {
			continue
		}
		if !write {
			return path + ": imports not grouped as standard library, third party, ours", nil
		}
		for _, c := range f.Comments {
			if c.Pos() > gd.Lparen && c.End() < gd.Rparen {
				return path + ": imports out of order, not rewritten because the block has comments", nil
			}
		}
		fixed, ok := regroup(fset, src, gd)
		if !ok {
			return path + ": imports out of order, not rewritten (unusual import spec)", nil
		}
		if err := os.WriteFile(path, fixed, 0o644); err != nil {
			return "", err
		}
		return path + ": imports regrouped", nil
	}
	return "", nil
}

// ordered reports whether each blank-line-separated group of gd holds one
// class and the classes rise from group to group.
func ordered(fset *token.FileSet, gd *ast.GenDecl) bool {
	last, lastLine, groupClass := -1, 0, -1
	for i, s := range gd.Specs {
		is := s.(*ast.ImportSpec)
		c := class(strings.Trim(is.Path.Value, "`\""))
		line := fset.Position(is.Pos()).Line
		newGroup := i == 0 || line > lastLine+1
		if newGroup {
			if c <= last {
				return false
			}
			groupClass, last = c, c
		} else if c != groupClass {
			return false
		}
		lastLine = fset.Position(is.End()).Line
	}
	return true
}

// regroup rewrites the block between the parentheses of gd.
func regroup(fset *token.FileSet, src []byte, gd *ast.GenDecl) ([]byte, bool) {
	groups := make([][]string, 3)
	for _, s := range gd.Specs {
		is := s.(*ast.ImportSpec)
		start, end := fset.Position(is.Pos()).Offset, fset.Position(is.End()).Offset
		text := string(src[start:end])
		if strings.Contains(text, "\n") {
			return nil, false
		}
		c := class(strings.Trim(is.Path.Value, "`\""))
		groups[c] = append(groups[c], text)
	}
	var b bytes.Buffer
	b.WriteString("(\n")
	first := true
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		if !first {
			b.WriteString("\n")
		}
		first = false
		sort.SliceStable(g, func(i, j int) bool { return importPath(g[i]) < importPath(g[j]) })
		for _, line := range g {
			b.WriteString("\t" + line + "\n")
		}
	}
	b.WriteString(")")
	lp, rp := fset.Position(gd.Lparen).Offset, fset.Position(gd.Rparen).Offset
	out := append([]byte(nil), src[:lp]...)
	out = append(out, b.Bytes()...)
	return append(out, src[rp+1:]...), true
}

func importPath(spec string) string {
	if i := strings.IndexAny(spec, "\"`"); i >= 0 {
		return spec[i:]
	}
	return spec
}
