package place_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestPrimary(t *testing.T) {
	dir := t.TempDir()
	p := place.Primary{Dir: filepath.Join(dir, "Package Delivery")}
	got, err := p.Place(context.Background(), api.PackageSummary{ID: "x"})
	if err != nil || got != p.Dir {
		t.Errorf("no custom location: got %q, %v", got, err)
	}
	custom := filepath.Join(dir, "custom", "..", "elsewhere")
	got, err = p.Place(context.Background(), api.PackageSummary{ID: "x", CustomLocation: custom})
	if err != nil || got != filepath.Join(dir, "elsewhere") {
		t.Errorf("custom location: got %q, %v", got, err)
	}
	if _, err := p.Place(context.Background(), api.PackageSummary{ID: "x", CustomLocation: "rel/path"}); !errors.Is(err, wharf.ErrInvalid) {
		t.Errorf("relative custom location: got %v, want ErrInvalid", err)
	}
}
