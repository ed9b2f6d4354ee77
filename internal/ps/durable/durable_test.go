package durable_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/durable"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.json")
	if err := durable.WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two" {
		t.Errorf("content: %q, %v", got, err)
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := durable.WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Error("write into a missing folder: no error")
	}
}

func TestRemoveAllAndEmpty(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	trash := filepath.Join(dir, ".trash")
	os.MkdirAll(filepath.Join(pkg, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(pkg, "a", "b", "f"), []byte("f"), 0o644)
	if err := durable.RemoveAll(pkg, trash); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(pkg); !os.IsNotExist(err) {
		t.Errorf("still there: %v", err)
	}
	if entries, _ := os.ReadDir(trash); len(entries) != 0 {
		t.Errorf("trash not emptied: %v", entries)
	}
	if err := durable.RemoveAll(pkg, trash); err != nil {
		t.Errorf("missing path: %v", err)
	}
	// What a crash leaves in trash, Empty removes.
	os.MkdirAll(filepath.Join(trash, "left-1", "x"), 0o755)
	if err := durable.Empty(trash); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(trash); len(entries) != 0 {
		t.Errorf("after Empty: %v", entries)
	}
	if err := durable.Empty(filepath.Join(dir, "nope")); err != nil {
		t.Errorf("Empty of a missing folder: %v", err)
	}
}
