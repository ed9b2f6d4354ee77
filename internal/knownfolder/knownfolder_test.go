package knownfolder

import "testing"

func TestMatchLinux(t *testing.T) {
	ks := Set{Exact: []string{"/"}, Trees: []string{"/usr", "/var/lib", "/home"}}
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
		got, folder := Match(tt.path, ks, false)
		if got != tt.want || folder != tt.folder {
			t.Errorf("Match(%q) = %v, %q; want %v, %q", tt.path, got, folder, tt.want, tt.folder)
		}
	}
}

func TestMatchWindows(t *testing.T) {
	ks := Set{Trees: []string{`C:\Windows`, `C:\Program Files`, `C:\Program Files (x86)`, `C:\ProgramData`, `C:\Users`}}
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
		got, folder := Match(tt.path, ks, true)
		if got != tt.want || folder != tt.folder {
			t.Errorf("Match(%q) = %v, %q; want %v, %q", tt.path, got, folder, tt.want, tt.folder)
		}
	}
}

func TestDefaultSets(t *testing.T) {
	for _, p := range []string{"/", "/etc/wharf", "/var/lib/wharf", "/home/alice/store", "/usr/local/wharf"} {
		if ok, _ := Match(p, Linux, false); !ok {
			t.Errorf("Linux: %s is not known", p)
		}
	}
	for _, p := range []string{"/srv/wharf", "/opt/wharf/Package Delivery", "/var/cache/wharf", "/data"} {
		if ok, which := Match(p, Linux, false); ok {
			t.Errorf("Linux: %s is known (%s)", p, which)
		}
	}
	for _, p := range []string{`C:\Windows\Wharf`, `c:\program files\Wharf`, `C:\ProgramData\Wharf`, `C:\Users\Public\Wharf`} {
		if ok, _ := Match(p, WindowsDefaults, true); !ok {
			t.Errorf("Windows: %s is not known", p)
		}
	}
	for _, p := range []string{`D:\Windows`, `E:\Wharf`, `C:\Wharf`, `C:\`} {
		if ok, which := Match(p, WindowsDefaults, true); ok {
			t.Errorf("Windows: %s is known (%s)", p, which)
		}
	}
}
