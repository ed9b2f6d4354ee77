//go:build !windows

package volume

import (
	"os"
	"testing"
)

// symlinkForTest makes a symlink or fails the test.
func symlinkForTest(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
