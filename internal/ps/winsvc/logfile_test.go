package winsvc

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRotatingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ps.log")
	if err := os.WriteFile(path, bytes.Repeat([]byte("o"), 60), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := openRotating(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("x"), 30)
	line[29] = '\n'
	for range 3 { // 60 + 30 fits; the next one rotates
		if _, err := r.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if len(old) != 90 || len(cur) != 60 {
		t.Errorf("after rotation: old %d bytes, current %d; want 90 and 60", len(old), len(cur))
	}
	if _, err := r.Write(line); err == nil {
		t.Error("Write after Close worked")
	}
}
