package volume

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestMatchKnownLinux(t *testing.T) {
	ks := knownSet{exact: []string{"/"}, trees: []string{"/usr", "/var/lib", "/home"}}
	tests := []struct {
		path   string
		want   bool
		folder string
	}{
		{"/", true, "/"},
		{"/usr", true, "/usr"},
		{"/usr/", true, "/usr"},
		{"/usr/local/wharf", true, "/usr"},
		{"/usrx", false, ""},
		{"/usr2/wharf", false, ""},
		{"/var/lib", true, "/var/lib"},
		{"/var/lib/wharf", true, "/var/lib"},
		{"/var/libx", false, ""},
		{"/var", false, ""},
		{"/var/cache/wharf", false, ""},
		{"/homework", false, ""},
		{"/opt/wharf/Package Delivery", false, ""},
		{"/USR/local", false, ""}, // Linux is case-sensitive
	}
	for _, tt := range tests {
		got, folder := matchKnown(tt.path, ks, false)
		if got != tt.want || folder != tt.folder {
			t.Errorf("matchKnown(%q) = %v, %q; want %v, %q", tt.path, got, folder, tt.want, tt.folder)
		}
	}
}

func TestMatchKnownWindows(t *testing.T) {
	ks := knownSet{trees: []string{`C:\Windows`, `C:\Program Files`, `C:\Program Files (x86)`, `C:\ProgramData`, `C:\Users`}}
	tests := []struct {
		path   string
		want   bool
		folder string
	}{
		{`C:\Windows`, true, `C:\Windows`},
		{`c:\windows\system32`, true, `C:\Windows`},
		{`C:\WINDOWS\Temp\Wharf`, true, `C:\Windows`},
		{`C:\WindowsApps`, false, ""},
		{`C:\Program Files\Wharf`, true, `C:\Program Files`},
		{`C:\Program Files (x86)\Wharf`, true, `C:\Program Files (x86)`},
		{`C:\Program Filesystem`, false, ""},
		{`C:/Program Files/Wharf`, true, `C:\Program Files`},
		{`\\?\C:\ProgramData\Wharf`, true, `C:\ProgramData`},
		{`C:\Users\`, true, `C:\Users`},
		{`C:\Users\Public\Wharf`, true, `C:\Users`},
		{`D:\Users`, false, ""},
		{`C:\`, false, ""},
		{`D:\Wharf`, false, ""},
		{`\\server\share\Windows`, false, ""},
	}
	for _, tt := range tests {
		got, folder := matchKnown(tt.path, ks, true)
		if got != tt.want || folder != tt.folder {
			t.Errorf("matchKnown(%q) = %v, %q; want %v, %q", tt.path, got, folder, tt.want, tt.folder)
		}
	}
}

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
	ks := knownSet{trees: got}
	if ok, folder := matchKnown(filepath.Join(real, "alice"), ks, false); !ok || folder != real {
		t.Errorf("path below the resolved folder: %v, %q; want true, %q (list %q)", ok, folder, real, got)
	}
	if ok, folder := matchKnown("/opt/wharf", ks, false); ok {
		t.Errorf("a folder linking to / covers everything: matched %q", folder)
	}
}
