package transfer

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// diskWriters are the standard library calls that create or write files.
var diskWriters = map[string][]string{
	"os":     {"Create", "CreateTemp", "OpenFile", "WriteFile", "MkdirTemp", "Rename", "Link", "Symlink"},
	"ioutil": {"TempFile", "TempDir", "WriteFile"},
}

// TestTransferPath_writes_no_files: plaintext recordings never touch local
// disk, because no package of this module on the transfer path (the engine
// and everything it imports) calls anything that creates or writes a file.
// (A TMPDIR check would only see the files a test happens to make.)
func TestTransferPath_writes_no_files(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,Module", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var pkg struct {
			ImportPath, Dir string
			GoFiles         []string
			Module          *struct{ Path string }
		}
		if err := dec.Decode(&pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || pkg.Module.Path != "github.com/recording-storage/recording-storage" {
			continue
		}
		for _, name := range pkg.GoFiles {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			imports := map[string]string{} // local name -> path
			for _, imp := range f.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				local := filepath.Base(path)
				if imp.Name != nil {
					local = imp.Name.Name
				}
				imports[local] = path
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				x, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				for _, fn := range diskWriters[filepath.Base(imports[x.Name])] {
					if sel.Sel.Name == fn && (imports[x.Name] == "os" || imports[x.Name] == "io/ioutil") {
						t.Errorf("%s: %s.%s on the transfer path (%s)", fset.Position(sel.Pos()), x.Name, fn, pkg.ImportPath)
					}
				}
				return true
			})
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("checked only %d packages of this module: the dependency listing is wrong", checked)
	}
}
