package winetest

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

func TestVersion(t *testing.T) {
	v := Version()
	if _, inHarness := os.LookupEnv("WHARF_WINE_DRIVES"); inHarness && v == "" {
		t.Fatal("run by scripts/wine/exec.sh, but ntdll has no wine_get_version")
	}
	t.Logf("Wine version: %q", v)
}

func TestUnsupported(t *testing.T) {
	for _, err := range []error{windows.ERROR_NOT_SUPPORTED, windows.ERROR_INVALID_FUNCTION,
		fmt.Errorf("junction: %w", windows.ERROR_CALL_NOT_IMPLEMENTED), errors.ErrUnsupported} {
		if !Unsupported(err) {
			t.Errorf("Unsupported(%v) = false", err)
		}
	}
	for _, err := range []error{nil, windows.ERROR_ACCESS_DENIED, windows.ERROR_SHARING_VIOLATION, os.ErrNotExist} {
		if Unsupported(err) {
			t.Errorf("Unsupported(%v) = true", err)
		}
	}
}

func TestDrives(t *testing.T) {
	t.Setenv("WHARF_WINE_DRIVES", "D:=ext4 E:=ext4 R:=cdrom bogus N=network")
	if got := Drives("ext4"); len(got) != 2 || got[0] != `D:\` || got[1] != `E:\` {
		t.Errorf(`Drives("ext4") = %q, want D:\ and E:\`, got)
	}
	if got := Drives("network"); len(got) != 0 {
		t.Errorf(`Drives("network") = %q, want none (malformed entry)`, got)
	}
	if got := Drive(t, "cdrom", 0); got != `R:\` {
		t.Errorf(`Drive("cdrom", 0) = %q`, got)
	}
}

// TestHarnessDrives checks that the drives the harness maps are there, of
// the types it says.
func TestHarnessDrives(t *testing.T) {
	want := map[string]uint32{"ext4": windows.DRIVE_FIXED, "cdrom": windows.DRIVE_CDROM,
		"network": windows.DRIVE_REMOTE, "removable": windows.DRIVE_REMOVABLE}
	for kind, typ := range want {
		ds := Drives(kind)
		if len(ds) == 0 {
			continue
		}
		for _, d := range ds {
			p, _ := windows.UTF16PtrFromString(d)
			if got := windows.GetDriveType(p); got != typ {
				t.Errorf("GetDriveType(%s) = %d, want %d (%s)", d, got, typ, kind)
			}
		}
	}
	Drive(t, "ext4", 1)
}
