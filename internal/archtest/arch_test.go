package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/wharf-project/wharf/"

// file is one Go file of the module with what it imports.
type file struct {
	path    string // relative to the module root, '/'-separated
	pkg     string // its package's import path below the module ("internal/ps/fetch")
	test    bool   // a _test.go file
	imports []string
}

// files parses the imports of every Go file of the module (all build tags:
// the Windows files count too).
func files(t *testing.T) []file {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	var out []file
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		fl := file{path: rel, pkg: path.Dir(rel), test: strings.HasSuffix(rel, "_test.go")}
		for _, im := range f.Imports {
			v, _ := strconv.Unquote(im.Path.Value)
			fl.imports = append(fl.imports, v)
		}
		out = append(out, fl)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 100 {
		t.Fatalf("found only %d Go files under %s", len(out), root)
	}
	return out
}

// below reports whether pkg is dir or a package below it.
func below(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// internal returns the module-relative path of an import of the module, or
// "" for any other import.
func internal(imp string) string {
	if rest, ok := strings.CutPrefix(imp, module); ok {
		return rest
	}
	return ""
}

// TestLayers: the Package Server and the Notification Server never import
// each other (test helpers of internal/testenv aside, which may start a
// real NS for PS tests); only the CLI and the dev cluster assemble both;
// the vocabulary and wire packages import nothing else of the module.
func TestLayers(t *testing.T) {
	for _, f := range files(t) {
		for _, imp := range f.imports {
			dep := internal(imp)
			if dep == "" {
				continue
			}
			switch {
			case below(f.pkg, "internal/ps") && below(dep, "internal/ns"):
				t.Errorf("%s imports %s: the Package Server must not import the Notification Server", f.path, imp)
			case below(f.pkg, "internal/ns") && below(dep, "internal/ps"):
				t.Errorf("%s imports %s: the Notification Server must not import the Package Server", f.path, imp)
			}
			if f.test {
				continue
			}
			both := below(dep, "internal/ps") || below(dep, "internal/ns")
			if both && !below(f.pkg, "internal/ps") && !below(f.pkg, "internal/ns") &&
				!below(f.pkg, "internal/cli") && !below(f.pkg, "internal/devcluster") && !below(f.pkg, "internal/testenv") {
				t.Errorf("%s imports %s: only the CLI, the dev cluster and test helpers assemble servers", f.path, imp)
			}
			for _, leaf := range []string{"internal/wharf", "internal/api", "internal/urlsign", "internal/durable", "internal/knownfolder", "internal/sdnotify", "internal/tlsca", "internal/httpguard", "internal/httpstatus"} {
				if below(f.pkg, leaf) && dep != "internal/wharf" {
					t.Errorf("%s imports %s: %s is a leaf (it may import internal/wharf only)", f.path, imp, leaf)
				}
			}
		}
	}
}

// TestOnlyTheStoresSpeakSQL: database/sql and the drivers are imported by
// the NS's sqlstore and the PS's state DB (and the PostgreSQL test helper)
// only.
func TestOnlyTheStoresSpeakSQL(t *testing.T) {
	sql := []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/pressly/goose"}
	for _, f := range files(t) {
		if below(f.pkg, "internal/ns/sqlstore") || below(f.pkg, "internal/ps/store") || below(f.pkg, "internal/testenv/pgtest") {
			continue
		}
		for _, imp := range f.imports {
			for _, s := range sql {
				if imp == s || strings.HasPrefix(imp, s+"/") {
					t.Errorf("%s imports %s: only internal/ns/sqlstore and internal/ps/store speak SQL", f.path, imp)
				}
			}
		}
	}
}

// TestPackageDataGoesThroughTheSeam: the parts that write package data —
// the store-root layout, the downloader, the relocation engine and its
// controller — see the disk only through fsys.FS (so the crash matrix
// covers them); they do not import os or syscall-level file APIs.
func TestPackageDataGoesThroughTheSeam(t *testing.T) {
	seam := []string{"internal/ps/storeroot", "internal/ps/fetch", "internal/ps/relocate", "internal/ps/location"}
	for _, f := range files(t) {
		if f.test {
			continue
		}
		in := false
		for _, s := range seam {
			if f.pkg == s { // the packages themselves, not their test helpers
				in = true
			}
		}
		if !in {
			continue
		}
		for _, imp := range f.imports {
			if imp == "os" || imp == "io/ioutil" {
				t.Errorf("%s imports %s: package data goes through fsys.FS", f.path, imp)
			}
		}
	}
}

// TestNoMockingFramework: fakes, never mocks (STYLE §8).
func TestNoMockingFramework(t *testing.T) {
	for _, f := range files(t) {
		for _, imp := range f.imports {
			if strings.Contains(imp, "gomock") || strings.HasSuffix(imp, "testify/mock") || strings.Contains(imp, "mockery") {
				t.Errorf("%s imports %s: hand-written fakes, not a mocking framework", f.path, imp)
			}
		}
	}
}
