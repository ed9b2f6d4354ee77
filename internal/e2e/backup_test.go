//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
)

// The backup and restore procedures of docs/operations.md, run as written
// against a running NS: the database first (SQLite's online backup, or
// pg_dump), then the blob folder and admin.token; restored into a new data
// folder (and database), a new NS serves every package, and each file's
// blob is there.

func TestBackupAndRestoreSQLite(t *testing.T) {
	sqlite3 := lookOrSkip(t, "sqlite3")
	dir := t.TempDir()
	data := filepath.Join(dir, "ns")
	nsProc, _, env := startNS(t, data, "")
	pkgs := []pkgContent{publishPackage(t, env, dir, "alpha", 3, 2048), publishPackage(t, env, dir, "beta", 2, 100)}

	// Backup, the NS running: sqlite3's .backup is SQLite's online backup
	// API and copies a consistent database whatever the NS writes.
	bak := filepath.Join(dir, "backup")
	mustRun(t, "mkdir", "-p", bak)
	mustRun(t, sqlite3, filepath.Join(data, "wharf.db"), ".backup '"+filepath.Join(bak, "wharf.db")+"'")
	mustRun(t, "cp", "-a", filepath.Join(data, "blobs"), filepath.Join(data, "admin.token"), bak+"/")
	// A package published after the database was copied is not in the
	// backup: the backup is of the moment the database was copied.
	late := publishPackage(t, env, dir, "late", 1, 10)
	if err := nsProc.stop(t); err != nil {
		t.Fatal(err)
	}

	// Restore into a new data folder and start an NS on it.
	restored := filepath.Join(dir, "restored")
	mustRun(t, "cp", "-a", bak, restored)
	_, _, env2 := startNS(t, restored, "")
	checkRestored(t, env2, env, pkgs, late, filepath.Join(restored, "blobs"))
}

func TestBackupAndRestorePostgreSQL(t *testing.T) {
	pgDump, psql := lookOrSkip(t, "pg_dump"), lookOrSkip(t, "psql")
	dir := t.TempDir()
	dsn := pgtest.DSN(t)
	data := filepath.Join(dir, "ns")
	nsProc, _, env := startNS(t, data, dsn)
	pkgs := []pkgContent{publishPackage(t, env, dir, "alpha", 3, 2048), publishPackage(t, env, dir, "beta", 2, 100)}

	bak := filepath.Join(dir, "backup")
	mustRun(t, "mkdir", "-p", bak)
	mustRun(t, pgDump, "--format=custom", "--no-owner", "--file="+filepath.Join(bak, "wharf.dump"), dsn)
	mustRun(t, "cp", "-a", filepath.Join(data, "blobs"), filepath.Join(data, "admin.token"), bak+"/")
	late := publishPackage(t, env, dir, "late", 1, 10)
	if err := nsProc.stop(t); err != nil {
		t.Fatal(err)
	}

	// Restore into an empty database, then an NS on it with the blobs.
	dsn2 := pgtest.DSN(t)
	mustRun(t, lookOrSkip(t, "pg_restore"), "--no-owner", "--dbname="+dsn2, filepath.Join(bak, "wharf.dump"))
	mustRun(t, psql, dsn2, "-c", "SELECT 1")
	restored := filepath.Join(dir, "restored")
	mustRun(t, "cp", "-a", bak, restored)
	_, _, env2 := startNS(t, restored, dsn2)
	checkRestored(t, env2, env, pkgs, late, filepath.Join(restored, "blobs"))
}

// checkRestored checks the restored NS (env2) has every package of the
// backup with all its blobs, answers with the same admin token, and does
// not have the package published after the backup.
func checkRestored(t *testing.T, env2, env []string, pkgs []pkgContent, late pkgContent, blobs string) {
	t.Helper()
	if env2[1] != env[1] {
		t.Errorf("the restored NS has another admin token")
	}
	var list api.PackageList
	mustJSON(t, env2, &list, "package", "ls")
	if len(list.Packages) != len(pkgs) {
		t.Errorf("restored NS lists %d packages, want %d: %+v", len(list.Packages), len(pkgs), list.Packages)
	}
	for _, p := range pkgs {
		var got api.Package
		mustJSON(t, env2, &got, "package", "show", p.id)
		if len(got.Files) != len(p.files) {
			t.Errorf("package %s: %d files after the restore, want %d", p.id, len(got.Files), len(p.files))
		}
		for _, f := range got.Files {
			if _, err := os.Stat(filepath.Join(blobs, "sha256", f.SHA256[:2], f.SHA256)); err != nil {
				t.Errorf("package %s, file %s: its blob is missing after the restore: %v", p.id, f.Path, err)
			}
		}
	}
	if r := run(t, env2, "package", "show", late.id); r.code == 0 {
		t.Errorf("a package published after the backup is in it")
	}
}

func lookOrSkip(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: scripts/test-setup.sh installs it", name)
	}
	return p
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
