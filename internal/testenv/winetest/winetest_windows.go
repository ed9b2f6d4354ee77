package winetest

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

var version = sync.OnceValue(func() string {
	ntdll := windows.NewLazySystemDLL("ntdll.dll")
	proc := ntdll.NewProc("wine_get_version")
	if proc.Find() != nil {
		return ""
	}
	r, _, _ := proc.Call()
	if r == 0 {
		return "unknown"
	}
	// r is the address of a static C string in ntdll.
	return windows.BytePtrToString((*byte)(unsafe.Add(nil, r)))
})

// Version is the version of Wine the test runs under (ntdll's
// wine_get_version), or "" on Windows itself.
func Version() string { return version() }

// Unsupported reports whether err is how Windows, or Wine, says a call or
// one of its options is not implemented: ERROR_NOT_SUPPORTED,
// ERROR_INVALID_FUNCTION (STATUS_NOT_IMPLEMENTED), ERROR_CALL_NOT_IMPLEMENTED
// or errors.ErrUnsupported.
func Unsupported(err error) bool {
	return errors.Is(err, windows.ERROR_NOT_SUPPORTED) || errors.Is(err, windows.ERROR_INVALID_FUNCTION) ||
		errors.Is(err, windows.ERROR_CALL_NOT_IMPLEMENTED) || errors.Is(err, errors.ErrUnsupported)
}

// Gap skips the test when it runs under Wine and err says the call is not
// implemented there (see Unsupported): the product needs call, Wine lacks
// it. The message starts "WINE GAP: call". Anywhere else, and for any other
// error, it returns and the test goes on to fail on err as it should.
func Gap(t testing.TB, call string, err error) {
	t.Helper()
	if err != nil && Version() != "" && Unsupported(err) {
		// The system's own words, without the paths around them.
		var errno windows.Errno
		if errors.As(err, &errno) {
			err = errno
		}
		t.Skipf("WINE GAP: %s: %v (Wine %s)", call, err, Version())
	}
}

// SkipGap skips the test under Wine with the message of Gap, for a call Wine
// is known to lack in a way the test cannot see from an error (a stub that
// answers success and does nothing); why says how it shows. On Windows it
// does nothing.
func SkipGap(t testing.TB, call, why string) {
	t.Helper()
	if Version() != "" {
		t.Skipf("WINE GAP: %s: %s (Wine %s)", call, why, Version())
	}
}

// Drives returns the roots (`D:\`) of the drives of kind that the harness
// mapped, from WHARF_WINE_DRIVES.
func Drives(kind string) []string {
	var out []string
	for _, d := range strings.Fields(os.Getenv("WHARF_WINE_DRIVES")) {
		letter, k, ok := strings.Cut(d, "=")
		if ok && k == kind && len(letter) == 2 && letter[1] == ':' {
			out = append(out, letter+`\`)
		}
	}
	return out
}

// Drive returns the root of the n-th (from 0) drive of kind, or skips the
// test saying why there is none: the harness maps the drives
// (scripts/wine/exec.sh), the ext4 volumes only as root.
func Drive(t testing.TB, kind string, n int) string {
	t.Helper()
	ds := Drives(kind)
	if n < len(ds) {
		return ds[n]
	}
	why := "not run by scripts/wine/exec.sh (make test-windows), which maps the drives"
	if os.Getenv("WHARF_WINE_DRIVES") != "" {
		why = "the harness mapped none"
		if note := os.Getenv("WHARF_WINE_DRIVES_NOTE"); note != "" {
			why += ": " + note
		}
	}
	t.Skipf("needs %d %s drive(s): %s", n+1, kind, why)
	return ""
}

// TempDir returns a new empty folder on the drive root, removed when the
// test ends.
func TempDir(t testing.TB, root string) string {
	t.Helper()
	dir, err := os.MkdirTemp(root, "wharf-test-")
	if err != nil {
		t.Fatalf("make a folder on %s: %v", root, err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}
