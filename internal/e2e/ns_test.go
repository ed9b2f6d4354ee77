package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
)

// makeTree writes n files in nested folders below dir; every tenth file
// repeats the content of the one before, so blobs are shared. It returns the
// number of distinct contents.
func makeTree(t *testing.T, dir string, n int) int {
	t.Helper()
	distinct := 0
	var prev []byte
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%17), fmt.Sprintf("sub%d", i%3), fmt.Sprintf("file-%04d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := prev
		if i%10 != 9 || prev == nil {
			data = make([]byte, 100+i*37)
			rand.Read(data)
			distinct++
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		prev = data
	}
	return distinct
}

func TestNSPackageLifecycle(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn := ""
			if db == "postgres" {
				dsn = pgtest.DSN(t)
			}
			ns, _, env := startNS(t, t.TempDir(), dsn)
			tree := t.TempDir()
			const files = 300
			distinct := makeTree(t, tree, files)

			var added publish.Result
			mustJSON(t, env, &added, "package", "add", tree, "--name", "demo", "--version", "1.0")
			if !added.Created || added.Uploaded != distinct || added.Package.FileCount != files {
				t.Fatalf("first add: created=%v uploaded=%d files=%d, want true, %d, %d",
					added.Created, added.Uploaded, added.Package.FileCount, distinct, files)
			}

			var list api.PackageList
			mustJSON(t, env, &list, "package", "ls")
			if len(list.Packages) != 1 || list.Packages[0].ID != added.Package.ID {
				t.Fatalf("ls: %+v, want the one package %s", list.Packages, added.Package.ID)
			}

			var shown api.Package
			mustJSON(t, env, &shown, "package", "show", added.Package.ID)
			if len(shown.Files) != files || !shown.Assignment.All {
				t.Fatalf("show: %d files, assignment %+v", len(shown.Files), shown.Assignment)
			}
			text := run(t, env, "package", "show", added.Package.ID)
			if text.code != 0 || !strings.Contains(text.stdout, "d00/sub0/file-0000.bin") {
				t.Fatalf("show (text): exit %d, output lacks a file:\n%s", text.code, text.stdout)
			}

			var again publish.Result
			mustJSON(t, env, &again, "package", "add", tree, "--name", "demo", "--version", "1.0")
			if again.Created || again.Uploaded != 0 || again.Skipped != distinct || again.Package.ID != added.Package.ID {
				t.Fatalf("re-add: created=%v uploaded=%d skipped=%d id=%s; want false, 0, %d, %s",
					again.Created, again.Uploaded, again.Skipped, again.Package.ID, distinct, added.Package.ID)
			}

			if r := run(t, env, "package", "rm", added.Package.ID); r.code != 0 {
				t.Fatalf("rm: exit %d: %s", r.code, r.stderr)
			}
			r := run(t, env, "package", "show", added.Package.ID)
			if r.code != 1 || !strings.Contains(r.stderr, "not found") {
				t.Fatalf("show after rm: exit %d, stderr %q; want 1 and not found", r.code, r.stderr)
			}
			mustJSON(t, env, &list, "package", "ls")
			if len(list.Packages) != 0 {
				t.Fatalf("ls after rm: %d packages", len(list.Packages))
			}
			if err := ns.stop(t); err != nil {
				t.Fatalf("NS exit after SIGTERM: %v", err)
			}
		})
	}
}

func TestCLIRefusals(t *testing.T) {
	_, url, env := startNS(t, t.TempDir(), "")
	tree := t.TempDir()
	makeTree(t, tree, 3)
	cases := []struct {
		name    string
		env     []string
		args    []string
		code    int
		message string
	}{
		{"no token", []string{"WHARF_NS=" + url, "WHARF_TOKEN="}, []string{"package", "ls"}, 2, "no token"},
		{"wrong token", []string{"WHARF_NS=" + url, "WHARF_TOKEN=wharf-admin-nope"}, []string{"package", "ls"}, 1, "wrong admin token"},
		{"missing version", env, []string{"package", "add", tree, "--name", "x"}, 2, "--version"},
		{"not a folder", env, []string{"package", "add", "/nonexistent", "--name", "x", "--version", "1"}, 1, "/nonexistent"},
		{"bad server list", env, []string{"package", "add", tree, "--name", "x", "--version", "1", "--servers", "a/b"}, 1, "server name"},
		{"unknown command", env, []string{"packages"}, 2, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.env, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.message) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, c.code, c.message)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
		})
	}
	if link := filepath.Join(tree, "link"); os.Symlink("/etc/passwd", link) == nil {
		r := run(t, env, "package", "add", tree, "--name", "x", "--version", "1")
		if r.code != 1 || !strings.Contains(r.stderr, "regular file") {
			t.Fatalf("symlink in package folder: exit %d, stderr %q", r.code, r.stderr)
		}
	}
}
