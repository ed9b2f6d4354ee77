package volume

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wharf-project/wharf/internal/knownfolder"
)

func TestIsKnownFolderResolves(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses the Linux known folders")
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if known, _ := IsKnownFolder(dir); known {
		t.Skipf("the temp folder %s is itself below a known folder", dir)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	toEtc := link("etc-link", "/etc")
	toEtcSub := link("ssl-link", "/etc/ssl")
	dangling := link("dangling", "/usr/wharf-test-does-not-exist")
	relToEtc := link("rel-link", "../../../../../../../../../../../../etc")
	toRoot := link("root-link", "/")
	toReal := link("real-link", "real/sub")

	tests := []struct {
		path   string
		want   bool
		folder string
	}{
		{"/", true, "/"},
		{"/usr/../opt/wharf", false, ""},
		{"/opt/../usr/wharf", true, "/usr"},
		{"/opt/./../etc", true, "/etc"},
		{"/var/lib/../cache/wharf", false, ""},
		{"/var/cache/../log/wharf", true, "/var/log"},
		{dir + "/new/../../../../../../../../../../../../../usr", true, "/usr"},
		{toEtc, true, "/etc"},
		{toEtc + "/wharf/store", true, "/etc"},
		// ".." after a symlink goes to the parent of its target, not back.
		{toEtcSub + "/../wharf", true, "/etc"},
		{toReal + "/..", false, ""},
		{dangling + "/store", true, "/usr"},
		{relToEtc + "/wharf", true, "/etc"},
		{toRoot, true, "/"},
		{toRoot + "/etc", true, "/etc"},
		{toRoot + "/opt/wharf", false, ""},
		{dir + "/new/store", false, ""},
	}
	for _, tt := range tests {
		got, folder := IsKnownFolder(tt.path)
		if got != tt.want || folder != tt.folder {
			t.Errorf("IsKnownFolder(%q) = %v, %q; want %v, %q", tt.path, got, folder, tt.want, tt.folder)
		}
	}

	t.Run("relative", func(t *testing.T) {
		t.Chdir("/usr")
		if got, folder := IsKnownFolder("local/wharf"); !got || folder != "/usr" {
			t.Errorf(`IsKnownFolder("local/wharf") in /usr = %v, %q; want true, "/usr"`, got, folder)
		}
		if got, _ := IsKnownFolder("../opt/wharf"); got {
			t.Error(`IsKnownFolder("../opt/wharf") in /usr = true, want false`)
		}
	})
}

func TestWithResolved(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "var", "home")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	symlinkForTest(t, real, home)
	rootLink := filepath.Join(dir, "rootlink")
	symlinkForTest(t, string(filepath.Separator), rootLink)
	got := withResolved([]string{home, rootLink, filepath.Join(dir, "missing")})
	ks := knownfolder.Set{Trees: got}
	if ok, folder := knownfolder.Match(filepath.Join(real, "alice"), ks, false); !ok || folder != real {
		t.Errorf("path below the resolved folder: %v, %q; want true, %q (list %q)", ok, folder, real, got)
	}
	if ok, folder := knownfolder.Match("/opt/wharf", ks, false); ok {
		t.Errorf("a folder linking to / covers everything: matched %q", folder)
	}
}
