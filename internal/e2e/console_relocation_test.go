//go:build linux

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
)

// TestConsoleRealRelocation drives a real relocation from the console: an
// administrator sets the Linux location on the settings page, watches the
// Resource Manager end with success and the alert appear; then, with one
// package made unmovable (chattr +i), a new location ends with the
// warning, and after the attribute is gone the Retry button ends with
// success. The PS is a real process; the targets are loop-mounted ext4
// volumes.
func TestConsoleRealRelocation(t *testing.T) {
	loopfs.RequireRoot(t)
	c := startConsole(t)
	b := c.browser
	if code := b.login("", c.token); code != http.StatusOK {
		t.Fatalf("login answered %d", code)
	}
	setLinuxLocation := func(path string) {
		t.Helper()
		b.open("/settings")
		b.click("#linux_mode_custom")
		b.setValue("#linux_path", path)
		if code := b.submit("#save-package-server"); code != http.StatusOK {
			t.Fatalf("saving %s answered %d", path, code)
		}
	}

	// Success, and the informational alert.
	first := filepath.Join(loopfs.Ext4(t, 128), "wharf-store")
	setLinuxLocation(first)
	b.open("/servers/" + c.ps)
	b.waitText("#ls-path", first)
	b.waitText("#ls-status", "Success: every package is at the target")
	b.waitText("#storage-path", first)
	payload := filepath.Join(first, c.pkg.ID, "lib", "payload.bin")
	if _, err := os.Stat(payload); err != nil {
		t.Fatalf("after the relocation the package is not at the target: %v", err)
	}
	b.open("/alerts")
	b.waitText("#alerts-table", "all packages are at the new location "+first)

	// One package cannot move: a warning, the package behind a link.
	if err := fsys.SetImmutable(payload, true); err != nil {
		t.Fatalf("chattr +i %s: %v", payload, err)
	}
	immutable := true
	t.Cleanup(func() {
		if immutable {
			fsys.SetImmutable(payload, false)
		}
	})
	second := filepath.Join(loopfs.Ext4(t, 128), "wharf-store")
	setLinuxLocation(second)
	b.open("/servers/" + c.ps)
	b.waitText("#ls-path", second)
	b.waitText("#ls-status", "Warning: some packages stay behind links")
	b.waitText("#relocation-packages", "Linked")
	if fi, err := os.Lstat(filepath.Join(second, c.pkg.ID)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the unmovable package has no link at the new location: %v %v", fi, err)
	}
	b.open("/alerts")
	b.waitText("#alerts-table", "Some of the files have not been moved to the new location")

	// The attribute is gone; Retry relocation moves it.
	if err := fsys.SetImmutable(payload, false); err != nil {
		t.Fatal(err)
	}
	immutable = false
	b.open("/servers/" + c.ps)
	if code := b.submit("#retry-button"); code != http.StatusOK {
		t.Fatalf("retry relocation answered %d", code)
	}
	b.waitText("#ls-status", "Success: every package is at the target")
	b.waitText("#history", "manual")
	fi, err := os.Lstat(filepath.Join(second, c.pkg.ID))
	if err != nil || !fi.IsDir() {
		t.Fatalf("after the retry the package is not a folder at the new location: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(first, c.pkg.ID)); !os.IsNotExist(err) {
		t.Fatalf("the package is still at the old location after the retry: %v", err)
	}
	if txt := b.text("#ls-attempts"); !strings.HasPrefix(txt, "0 done") {
		t.Errorf("a manual retry counted as automatic: attempts %q", txt)
	}
}
