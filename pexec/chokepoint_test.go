package pexec_test

import (
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOneKillChokepoint (issue #17): pexec names a process by its PID to
// signal it in one function only, killByPID, which proves the target
// first. The test type-checks the package's Linux files and lists every
// call of kill(2) (unix.Kill, syscall.Kill) and of os.Process's Signal and
// Kill methods (which call kill(2) for a Process without a pidfd), and the
// function it is in: all must be in killByPID (fallback.go).
func TestOneKillChokepoint(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the package from source")
	}
	if _, err := os.Stat("cmd.go"); err != nil {
		t.Skip("the package's source is not here:", err)
	}
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	linux := build.Default
	linux.GOOS, linux.GOARCH = "linux", "amd64"
	var files []*ast.File
	for _, name := range names {
		if ok, err := linux.MatchFile(".", name); err != nil || !ok || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	if _, err := conf.Check("github.com/pexec-dev/pexec/pexec", fset, files, info); err != nil {
		t.Skip("cannot type-check here:", err)
	}
	var got []string
	for _, f := range files {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if what := killCall(info, sel); what != "" {
					got = append(got, fn.Name.Name+": "+what)
				}
				return true
			})
		}
	}
	slices.Sort(got)
	want := []string{"killByPID: (*os.Process).Signal", "killByPID: unix.Kill"}
	if !slices.Equal(got, want) {
		t.Errorf("calls that may send a signal by PID, by function:\n\t%s\nwant only:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// killCall names sel if it is kill(2) or an os.Process method that sends
// a signal.
func killCall(info *types.Info, sel *ast.SelectorExpr) string {
	if s, ok := info.Selections[sel]; ok {
		if s.Kind() == types.MethodVal && (sel.Sel.Name == "Signal" || sel.Sel.Name == "Kill") &&
			types.TypeString(s.Recv(), nil) == "*os.Process" {
			return "(*os.Process)." + sel.Sel.Name
		}
		return ""
	}
	if obj := info.Uses[sel.Sel]; obj != nil && obj.Pkg() != nil && sel.Sel.Name == "Kill" {
		switch obj.Pkg().Path() {
		case "golang.org/x/sys/unix", "syscall":
			return obj.Pkg().Name() + ".Kill"
		}
	}
	return ""
}
