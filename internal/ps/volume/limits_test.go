package volume

import (
	"errors"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/wharf"
)

func TestLimitsFor(t *testing.T) {
	if got := LimitsFor("linux"); got.MaxPath != 4095 || got.MaxComponent != 255 || got.UTF16 || got.Windows {
		t.Errorf("LimitsFor(linux) = %+v", got)
	}
	if got := LimitsFor("windows"); got.MaxPath != 8184 || got.MaxComponent != 0 || !got.UTF16 || !got.Windows {
		t.Errorf("LimitsFor(windows) = %+v", got)
	}
}

func TestLimitsJoin(t *testing.T) {
	lin, win := LimitsFor("linux"), LimitsFor("windows")
	tests := []struct {
		l           Limits
		target, rel string
		want        string
	}{
		{lin, "/srv/wharf", "pkg/a/b.txt", "/srv/wharf/pkg/a/b.txt"},
		{lin, "/", "pkg/a", "/pkg/a"},
		{lin, "/srv", "", "/srv"},
		{win, `D:\Wharf`, "pkg/a/b.txt", `D:\Wharf\pkg\a\b.txt`},
		{win, `D:\`, "pkg/a", `D:\pkg\a`},
		{win, `D:/`, "pkg", `D:/pkg`},
	}
	for _, tt := range tests {
		if got := tt.l.Join(tt.target, tt.rel); got != tt.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tt.target, tt.rel, got, tt.want)
		}
	}
}

// pathOfLen returns "/" followed by elements of at most elem bytes, n bytes
// in all.
func pathOfLen(n, elem int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteByte('/')
		k := min(elem, n-b.Len())
		b.WriteString(strings.Repeat("a", k))
	}
	return b.String()
}

func TestLimitsCheckLinux(t *testing.T) {
	l := LimitsFor("linux")
	long255 := strings.Repeat("x", 255)
	tests := []struct {
		name        string
		target, rel string
		wantErr     bool
		component   bool
	}{
		{"short", "/srv/wharf", "pkg/file", false, false},
		{"exactly 4095 bytes", pathOfLen(4095-9, 200), "pkg/file", false, false},
		{"4096 bytes", pathOfLen(4096-9, 200), "pkg/file", true, false},
		{"255-byte element in rel", "/srv", "pkg/" + long255, false, false},
		{"256-byte element in rel", "/srv", "pkg/" + long255 + "y", true, true},
		{"256-byte element in target", "/srv/" + long255 + "y", "pkg", true, true},
		// é is 2 bytes: 128 of them are 256 bytes though 128 characters.
		{"multibyte element over 255 bytes", "/srv", strings.Repeat("é", 128), true, true},
		{"no packages", "/srv/wharf", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Check(tt.target, tt.rel)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrPathTooLong) || !errors.Is(err, wharf.ErrInvalid) {
				t.Errorf("error %v does not match ErrPathTooLong and wharf.ErrInvalid", err)
			}
			var pe *PathLengthError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *PathLengthError", err)
			}
			if (pe.Component != "") != tt.component {
				t.Errorf("Component = %.20q, want component error %v", pe.Component, tt.component)
			}
			if pe.Len <= pe.Max || pe.Unit != "bytes" {
				t.Errorf("Len %d, Max %d, Unit %q", pe.Len, pe.Max, pe.Unit)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error message is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestLimitsCheckWindows(t *testing.T) {
	l := LimitsFor("windows")
	target := `D:\Wharf` // 8 characters, +1 for the separator
	tests := []struct {
		name    string
		rel     string
		wantErr bool
		wantLen int
	}{
		{"exactly 8184", strings.Repeat("a", 8184-9), false, 8184},
		{"8185", strings.Repeat("a", 8185-9), true, 8185},
		// é is 1 UTF-16 unit (2 bytes in UTF-8): bytes do not count.
		{"8184 characters, more bytes", strings.Repeat("é", 8184-9), false, 8184},
		// U+1F600 is 2 UTF-16 units.
		{"surrogate pairs", strings.Repeat("😀", (8184-9)/2+1), true, 9 + ((8184-9)/2+1)*2},
		// no per-element limit of its own
		{"long element", strings.Repeat("a", 300), false, 309},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Len(l.Join(target, tt.rel)); got != tt.wantLen {
				t.Errorf("Len = %d, want %d", got, tt.wantLen)
			}
			err := l.Check(target, tt.rel)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, want error %v", err, tt.wantErr)
			}
			var pe *PathLengthError
			if err != nil && (!errors.As(err, &pe) || pe.Unit != "characters" || pe.Max != 8184) {
				t.Errorf("error = %#v", err)
			}
		})
	}
}

func TestCheckPathLengthUsesRunningOS(t *testing.T) {
	if err := CheckPathLength("/srv/wharf", "pkg/file"); err != nil {
		t.Errorf("CheckPathLength short path: %v", err)
	}
	if err := CheckPathLength("/srv", strings.Repeat("a", 9000)); err == nil {
		t.Error("CheckPathLength of 9000 characters: no error")
	}
}
