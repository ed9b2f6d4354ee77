package volume

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// symlinkForTest makes a symbolic link (CreateSymbolicLinkW), or skips the
// test where none can be made: without SeCreateSymbolicLinkPrivilege (not an
// administrator, no developer mode), or under a Wine whose
// CreateSymbolicLinkW answers success and makes nothing.
func symlinkForTest(t *testing.T, target, link string) {
	t.Helper()
	err := os.Symlink(target, link)
	if errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD) {
		t.Skipf("symbolic links need SeCreateSymbolicLinkPrivilege: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
		winetest.SkipGap(t, "CreateSymbolicLinkW", "it answers success and makes no link")
		t.Fatalf("os.Symlink(%s, %s) answered success, but there is no link: %v", target, link, err)
	}
}
