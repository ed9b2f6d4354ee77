package regsettings

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// useKey creates HKLM\Key for the test and deletes it afterwards. It never
// touches a key that exists already (an administrator's real settings), and
// skips without the right to write HKLM (not an administrator; under Wine
// every test binary has a registry of its own).
func useKey(t *testing.T) registry.Key {
	t.Helper()
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, Key, registry.QUERY_VALUE|registry.WOW64_64KEY); err == nil {
		k.Close()
		t.Skipf(`HKLM\%s exists on this machine; not touching it`, Key)
	}
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, Key, registry.ALL_ACCESS|registry.WOW64_64KEY)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Skipf(`cannot create HKLM\%s: %v (run as an administrator)`, Key, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.Close()
		if err := registry.DeleteKey(registry.LOCAL_MACHINE, Key); err != nil {
			t.Errorf("delete HKLM\\%s: %v", Key, err)
		}
		parent := Key[:strings.LastIndexByte(Key, '\\')]
		_ = registry.DeleteKey(registry.LOCAL_MACHINE, parent) // SOFTWARE\Wharf, when the test made it
	})
	return k
}

func TestReadRegistry(t *testing.T) {
	if s, err := Read(); err != nil || !s.Empty() {
		t.Fatalf("Read() without the key = %v, %v; want nothing", s, err)
	}
	k := useKey(t)
	if s, err := Read(); err != nil || !s.Empty() {
		t.Fatalf("Read() of an empty key = %v, %v; want nothing", s, err)
	}
	if err := k.SetDWordValue(ValueMaxAttempts, 7); err != nil {
		t.Fatal(err)
	}
	s, err := Read()
	if err != nil || s.MaxAttempts == nil || *s.MaxAttempts != 7 || s.Interval != nil {
		t.Fatalf("Read() with max attempts 7 = %v, %v", s, err)
	}
	if err := k.SetDWordValue(ValueInterval, 45); err != nil {
		t.Fatal(err)
	}
	s, err = Read()
	if err != nil || *s.MaxAttempts != 7 || s.Interval == nil || *s.Interval != 45*time.Minute {
		t.Fatalf("Read() with both = %v, %v", s, err)
	}

	// Wrong types and values are errors naming the value.
	if err := k.SetStringValue(ValueInterval, "45"); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(); err == nil || !strings.Contains(err.Error(), ValueInterval) || !strings.Contains(err.Error(), "REG_DWORD") {
		t.Errorf("Read() with a REG_SZ interval = %v, want an error naming the value and REG_DWORD", err)
	}
	if err := k.SetQWordValue(ValueInterval, 45); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(); err == nil || !strings.Contains(err.Error(), "REG_QWORD") {
		t.Errorf("Read() with a REG_QWORD interval = %v, want an error", err)
	}
	if err := k.SetDWordValue(ValueInterval, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(); err == nil || !strings.Contains(err.Error(), ValueInterval) {
		t.Errorf("Read() with a 0-minute interval = %v, want an error", err)
	}
	t.Logf("read under Wine %q", winetest.Version())
}
