package ps

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ps/regsettings"
)

// TestRegistryPrecedence: registry values replace the defaults; a config
// file's keys replace the registry's; what neither sets keeps its default.
func TestRegistryPrecedence(t *testing.T) {
	five, thirty := 5, 30*time.Minute
	c := DefaultConfig()
	c.applyRegistry(regsettings.Settings{MaxAttempts: &five, Interval: &thirty})
	if c.Relocation.MaxAttempts != 5 || c.Relocation.Interval != 30*time.Minute {
		t.Fatalf("after the registry: %+v", c.Relocation)
	}
	file := filepath.Join(t.TempDir(), "ps.toml")
	if err := os.WriteFile(file, []byte("[relocation]\ninterval = \"1h\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	if c.Relocation.MaxAttempts != 5 || c.Relocation.Interval != time.Hour {
		t.Errorf("after the file: %+v; want max_attempts 5 (registry), interval 1h (file)", c.Relocation)
	}
	c = DefaultConfig()
	c.applyRegistry(regsettings.Settings{})
	if c.Relocation != DefaultConfig().Relocation {
		t.Errorf("an empty registry changed %+v", c.Relocation)
	}
}
