package place_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

const (
	MiB = 1 << 20
	GiB = 1 << 30
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

// The fake machine: the primary location lies on /srv (a 1 GiB ext4), other
// volumes are added by each test.
const (
	primaryVol = "/srv"
	primary    = "/srv/wharf/Package Delivery"
)

// pkg is a one-file package whose need (see place.Need) is exactly need
// bytes.
func pkg(id string, need uint64) api.PackageSummary {
	return api.PackageSummary{ID: id, Name: "p-" + id, Version: "1", Size: int64(need) - place.FileSlack, FileCount: 1}
}

func newPlacer(facts volume.Facts, reserve place.Reserve, allFixed bool, only ...string) *place.Rotating {
	r := place.NewRotating(place.Options{Primary: primary, Facts: facts, Reserve: reserve, Volumes: only})
	r.SetAllFixedDrives(allFixed)
	return r
}

func placeIt(t *testing.T, r *place.Rotating, p api.PackageSummary) (string, error) {
	t.Helper()
	return r.Place(context.Background(), p)
}

func TestNeed(t *testing.T) {
	got := place.Need(api.PackageSummary{Size: 10 * MiB, FileCount: 3})
	if want := uint64(10*MiB + 3*place.FileSlack); got != want {
		t.Errorf("Need: got %d, want %d", got, want)
	}
	if got := place.Need(api.PackageSummary{Size: -5, FileCount: -1}); got != 0 {
		t.Errorf("Need of nonsense: got %d, want 0", got)
	}
}

func TestReserveOf(t *testing.T) {
	for _, tc := range []struct {
		r     place.Reserve
		total uint64
		want  uint64
	}{
		{place.Reserve{Percent: 5}, 1000 * MiB, 50 * MiB},
		{place.Reserve{Percent: 0.5}, 1000, 5},
		{place.Reserve{Bytes: 2 * GiB}, 1000 * MiB, 2 * GiB}, // bytes win, even above the size
		{place.Reserve{Percent: 5, Bytes: 7}, 1000 * MiB, 7},
		{place.Reserve{}, 1000 * MiB, 0},
	} {
		if got := tc.r.Of(tc.total); got != tc.want {
			t.Errorf("%+v of %d: got %d, want %d", tc.r, tc.total, got, tc.want)
		}
	}
}

// TestReserveBoundary checks the rule free − need ≥ reserve at its edge, for
// a reserve in percent and in bytes.
func TestReserveBoundary(t *testing.T) {
	const total = 1000 * MiB
	for _, tc := range []struct {
		name    string
		reserve place.Reserve
		resv    uint64
	}{
		{"5 percent", place.Reserve{Percent: 5}, 50 * MiB},
		{"bytes", place.Reserve{Bytes: 123456789}, 123456789},
		{"none", place.Reserve{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const need = 10 * MiB
			for _, c := range []struct {
				avail uint64
				fits  bool
			}{
				{need + tc.resv, true},      // exactly the reserve left
				{need + tc.resv + 1, true},  // a byte more
				{need + tc.resv - 1, false}, // a byte short
				{need - 1, false},           // not even the package
			} {
				facts := volumetest.New(volumetest.Disk(primaryVol, "ext4", total, c.avail))
				r := newPlacer(facts, tc.reserve, false)
				root, err := placeIt(t, r, pkg("a", need))
				if c.fits {
					if err != nil || root != primary {
						t.Errorf("avail %d: got %q, %v; want the primary location", c.avail, root, err)
					}
					continue
				}
				var se *place.SpaceError
				if !errors.As(err, &se) || !errors.Is(err, wharf.ErrNoSpace) {
					t.Fatalf("avail %d: got %q, %v; want a SpaceError wrapping ErrNoSpace", c.avail, root, err)
				}
				want := place.SpaceError{Volume: primaryVol, Need: need, Free: c.avail, Reserve: tc.resv}
				if *se != want {
					t.Errorf("avail %d: got %+v, want %+v", c.avail, *se, want)
				}
			}
		})
	}
}

func TestSwitchOffFailsClearly(t *testing.T) {
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 60*MiB),
		volumetest.Disk("/mnt/big", "ext4", 100*GiB, 90*GiB),
	)
	r := newPlacer(facts, place.Reserve{Percent: 5}, false)
	root, err := placeIt(t, r, pkg("a", 20*MiB))
	if err == nil {
		t.Fatalf("got %q, want an error", root)
	}
	want := "not enough space on /srv: need 20MiB, 60MiB free, reserve 51.2MiB"
	if err.Error() != want {
		t.Errorf("error: got %q, want %q", err, want)
	}
	if got := r.Held(primary); got != 0 {
		t.Errorf("a failed placement holds %d bytes", got)
	}
	// A package that fits still goes to the primary location.
	if root, err := placeIt(t, r, pkg("b", 8*MiB)); err != nil || root != primary {
		t.Errorf("small package: got %q, %v", root, err)
	}
}

func TestSwitchOnPicksMostFree(t *testing.T) {
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 200*MiB),
		volumetest.Disk("/mnt/a", "ext4", 10*GiB, 1536*MiB),
		volumetest.Disk("/mnt/b", "xfs", 10*GiB, 3*GiB),
		volumetest.Disk("/mnt/c", "btrfs", 10*GiB, 2560*MiB),
	)
	r := newPlacer(facts, place.Reserve{Bytes: 100 * MiB}, true)
	// Small packages stay on the primary volume while it keeps its reserve.
	if root, err := placeIt(t, r, pkg("small", 10*MiB)); err != nil || root != primary {
		t.Fatalf("small package: got %q, %v; want the primary", root, err)
	}
	// Bigger ones rotate; the space held by each placement counts for the
	// next, so they spread over the volumes by free space (MiB):
	//   b 3072 → b; c 2560 > b 2072 → c; b 2072 → b;
	//   c 1560 > a 1536 > b 1072 → c; a 1536 → a.
	want := []string{"/mnt/b", "/mnt/c", "/mnt/b", "/mnt/c", "/mnt/a"}
	for i, vol := range want {
		root, err := placeIt(t, r, pkg(fmt.Sprint("big", i), 1000*MiB))
		if err != nil {
			t.Fatalf("package %d: %v", i, err)
		}
		if w := filepath.Join(vol, storeroot.DirName); root != w {
			t.Errorf("package %d: got %q, want %q", i, root, w)
		}
	}
	// Now nothing has room: the error names the primary and every other
	// volume's free space.
	_, err := placeIt(t, r, pkg("last", 1000*MiB))
	if !errors.Is(err, wharf.ErrNoSpace) {
		t.Fatalf("no room anywhere: got %v, want ErrNoSpace", err)
	}
	for _, s := range []string{"not enough space on /srv", "no other eligible volume has room", "/mnt/a: ", "/mnt/b: ", "/mnt/c: "} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q: want it to contain %q", err, s)
		}
	}
	// Release frees the space held.
	r.Release("big0")
	if root, err := placeIt(t, r, pkg("last", 1000*MiB)); err != nil || root != "/mnt/b/Package Delivery" {
		t.Errorf("after a release: got %q, %v", root, err)
	}
}

func TestRotatedVolumeKeepsItsReserve(t *testing.T) {
	// The volume with most free space is large, so its 5% reserve is
	// large too: the package does not fit above it, and goes to the
	// smaller one.
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 10*MiB),
		volumetest.Disk("/mnt/huge", "ext4", 1000*GiB, 51*GiB),
		volumetest.Disk("/mnt/small", "ext4", 10*GiB, 40*GiB/10),
	)
	r := newPlacer(facts, place.Reserve{Percent: 5}, true)
	root, err := placeIt(t, r, pkg("a", 2*GiB))
	if err != nil || root != "/mnt/small/Package Delivery" {
		t.Errorf("got %q, %v; want /mnt/small", root, err)
	}
}

func TestIneligibleVolumesAreNeverChosen(t *testing.T) {
	base := func() *volumetest.Fake {
		return volumetest.New(
			volumetest.Disk(primaryVol, "ext4", 1*GiB, 10*MiB),
			volumetest.Disk("/mnt/ok", "ext4", 10*GiB, 1*GiB),
		)
	}
	bigBad := func(edit func(*volume.Info)) volume.Info {
		v := volumetest.Disk("/mnt/bad", "ext4", 100*GiB, 90*GiB)
		edit(&v)
		return v
	}
	for _, tc := range []struct {
		name string
		bad  volume.Info
		only []string
	}{
		{"not fixed (tmpfs)", bigBad(func(v *volume.Info) {
			v.FSType, v.Fixed, v.FixedReason = "tmpfs", false, "memory filesystem tmpfs"
		}), nil},
		{"not fixed (removable)", bigBad(func(v *volume.Info) { v.Fixed, v.FixedReason = false, "removable device sdb" }), nil},
		{"unsupported (vfat)", volumetest.Disk("/mnt/bad", "vfat", 100*GiB, 90*GiB), nil},
		{"unsupported (fusefat)", volumetest.Disk("/mnt/bad", "fuse.fusefat", 100*GiB, 90*GiB), nil},
		{"read-only", bigBad(func(v *volume.Info) { v.ReadOnly = true }), nil},
		{"excluded by NO_WHARF_ON_DRIVE", bigBad(func(v *volume.Info) { v.Excluded = true }), nil},
		{"not in storage.volumes", bigBad(func(*volume.Info) {}), []string{"/mnt/ok"}},
		{"a second mount of the primary's volume", bigBad(func(v *volume.Info) {}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			facts := base()
			if tc.name == "a second mount of the primary's volume" {
				pv, _ := facts.Stat(primaryVol)
				tc.bad.DevID = pv.DevID // same filesystem, more free space than it really has
			}
			facts.Add(tc.bad)
			r := newPlacer(facts, place.Reserve{Percent: 5}, true, tc.only...)
			root, err := placeIt(t, r, pkg("a", 100*MiB))
			if err != nil || root != "/mnt/ok/Package Delivery" {
				t.Errorf("got %q, %v; want /mnt/ok", root, err)
			}
			// With the good volume gone, nothing is left.
			facts.Remove("/mnt/ok")
			root, err = placeIt(t, r, pkg("b", 100*MiB))
			if err == nil || !errors.Is(err, wharf.ErrNoSpace) || strings.Contains(err.Error(), "/mnt/bad") {
				t.Errorf("only the bad volume: got %q, %v; want ErrNoSpace not naming /mnt/bad", root, err)
			}
			if err != nil && !strings.Contains(err.Error(), "no other eligible volume for rotation") {
				t.Errorf("error %q: want it to say no other volume is eligible", err)
			}
		})
	}
}

func TestConcurrentPlacementsShareTheLastSpace(t *testing.T) {
	// The primary volume has room for exactly 3 packages above its
	// reserve, /mnt/a for exactly 4 more.
	const need = 10 * MiB
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 3*need+50*MiB),
		volumetest.Disk("/mnt/a", "ext4", 1*GiB, 4*need+50*MiB),
	)
	for _, allFixed := range []bool{false, true} {
		t.Run(fmt.Sprint("all fixed drives ", allFixed), func(t *testing.T) {
			r := newPlacer(facts, place.Reserve{Bytes: 50 * MiB}, allFixed)
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					root, err := r.Place(context.Background(), pkg(fmt.Sprint(i), need))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						if !errors.Is(err, wharf.ErrNoSpace) || !strings.Contains(err.Error(), "held by downloads in progress") {
							t.Errorf("package %d: %v", i, err)
						}
						root = "failed"
					}
					got[root]++
				}()
			}
			wg.Wait()
			want := map[string]int{primary: 3, "failed": 17}
			if allFixed {
				want = map[string]int{primary: 3, "/mnt/a/Package Delivery": 4, "failed": 13}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("placements: got %v, want %v", got, want)
			}
			if h := r.Held(primary); h != 3*need {
				t.Errorf("held on the primary volume: got %d, want %d", h, 3*need)
			}
			for i := range 20 {
				r.Release(fmt.Sprint(i))
			}
			if h := r.Held(primary); h != 0 {
				t.Errorf("held after releasing all: %d", h)
			}
		})
	}
}

func TestHoldCountsResumedDownloads(t *testing.T) {
	const need = 10 * MiB
	facts := volumetest.New(volumetest.Disk(primaryVol, "ext4", 1*GiB, 2*need))
	r := newPlacer(facts, place.Reserve{}, false)
	r.Hold(pkg("resumed", need), primary)
	if root, err := placeIt(t, r, pkg("a", need)); err != nil || root != primary {
		t.Fatalf("one more: got %q, %v", root, err)
	}
	if _, err := placeIt(t, r, pkg("b", need)); !errors.Is(err, wharf.ErrNoSpace) {
		t.Fatalf("beyond what the resumed download holds: got %v, want ErrNoSpace", err)
	}
	// Placing a package again replaces its hold rather than adding one.
	if root, err := placeIt(t, r, pkg("a", need)); err != nil || root != primary {
		t.Errorf("placing a again: got %q, %v", root, err)
	}
	r.Release("resumed")
	if root, err := placeIt(t, r, pkg("b", need)); err != nil || root != primary {
		t.Errorf("after the release: got %q, %v", root, err)
	}
}

func TestCustomLocationIsNeverRotated(t *testing.T) {
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 0),
		volumetest.Disk("/data", "ext4", 1*GiB, 1*MiB),
		volumetest.Disk("/mnt/big", "ext4", 100*GiB, 90*GiB),
	)
	r := newPlacer(facts, place.Reserve{Percent: 5}, true)
	p := pkg("c", 500*MiB)
	p.CustomLocation = "/data/apps/../custom"
	root, err := placeIt(t, r, p)
	if err != nil || root != "/data/custom" {
		t.Errorf("got %q, %v; want /data/custom, unchecked and not rotated", root, err)
	}
	if h := r.Held("/data"); h != place.Need(p) {
		t.Errorf("held on the custom location's volume: got %d, want %d", h, place.Need(p))
	}
	p.CustomLocation = "relative/path"
	if _, err := placeIt(t, r, p); !errors.Is(err, wharf.ErrInvalid) {
		t.Errorf("relative custom location: got %v, want ErrInvalid", err)
	}
}

func TestSetPrimaryAndSwitch(t *testing.T) {
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 10*MiB),
		volumetest.Disk("/mnt/new", "ext4", 10*GiB, 5*GiB),
		volumetest.Disk("/mnt/other", "ext4", 10*GiB, 9*GiB),
	)
	r := newPlacer(facts, place.Reserve{Percent: 5}, false)
	if r.AllFixedDrives() {
		t.Error("switch on after SetAllFixedDrives(false)")
	}
	if _, err := placeIt(t, r, pkg("a", 100*MiB)); !errors.Is(err, wharf.ErrNoSpace) {
		t.Fatalf("switch off: got %v", err)
	}
	if !r.SetAllFixedDrives(true) || r.SetAllFixedDrives(true) {
		t.Error("SetAllFixedDrives does not report changes right")
	}
	if root, err := placeIt(t, r, pkg("a", 100*MiB)); err != nil || root != "/mnt/other/Package Delivery" {
		t.Errorf("switch on: got %q, %v", root, err)
	}
	r.SetPrimary("/mnt/new/store/")
	if got := r.Primary(); got != "/mnt/new/store" {
		t.Errorf("Primary: got %q", got)
	}
	if root, err := placeIt(t, r, pkg("b", 100*MiB)); err != nil || root != "/mnt/new/store" {
		t.Errorf("new primary: got %q, %v", root, err)
	}
}

func TestFactsErrors(t *testing.T) {
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 10*MiB),
		volumetest.Disk("/mnt/a", "ext4", 10*GiB, 5*GiB),
	)
	r := newPlacer(facts, place.Reserve{Percent: 5}, true)

	facts.FailVolumes(errors.New("mountinfo unreadable"))
	_, err := placeIt(t, r, pkg("a", 100*MiB))
	if !errors.Is(err, wharf.ErrNoSpace) || !strings.Contains(err.Error(), "mountinfo unreadable") {
		t.Errorf("volumes cannot be listed: got %v", err)
	}
	facts.FailVolumes(nil)

	// The primary volume cannot be read (as on an OS without volume
	// support): the package goes there unchecked.
	facts.FailStat(primaryVol, errors.New("statfs: input/output error"))
	if root, err := placeIt(t, r, pkg("b", 100*MiB)); err != nil || root != primary {
		t.Errorf("primary volume unreadable: got %q, %v; want the primary", root, err)
	}
}

// index is a fake place.Index.
type index map[string]bool

func (ix index) HasPackagesIn(root string) bool { return ix[root] }

func TestRotatedRootThatLostItsMarkerIsSkipped(t *testing.T) {
	dir := t.TempDir()
	volA, volB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	rootA, rootB := filepath.Join(volA, storeroot.DirName), filepath.Join(volB, storeroot.DirName)
	for _, d := range []string{rootA, rootB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := storeroot.New(fsys.OS{}, "ps1", nil).Prepare(rootB); err != nil {
		t.Fatal(err)
	}
	facts := volumetest.New(
		volumetest.Disk(primaryVol, "ext4", 1*GiB, 10*MiB),
		volumetest.Disk(volA, "ext4", 10*GiB, 9*GiB), // most free, but its root lost its marker
		volumetest.Disk(volB, "ext4", 10*GiB, 5*GiB),
	)
	ix := index{rootA: true, rootB: true}
	r := place.NewRotating(place.Options{Primary: primary, Facts: facts, Reserve: place.Reserve{Percent: 5}, Index: ix,
		Markers: storeroot.New(fsys.OS{}, "ps1", nil)})
	r.SetAllFixedDrives(true)
	if root, err := placeIt(t, r, pkg("a", 100*MiB)); err != nil || root != rootB {
		t.Errorf("got %q, %v; want %s", root, err, rootB)
	}
	// Without packages there, a root without a marker is a new root.
	delete(ix, rootA)
	if root, err := placeIt(t, r, pkg("b", 100*MiB)); err != nil || root != rootA {
		t.Errorf("got %q, %v; want %s", root, err, rootA)
	}
	// Both unusable: the error says why.
	ix[rootA] = true
	facts.Remove(volB)
	_, err := placeIt(t, r, pkg("c", 100*MiB))
	if err == nil || !strings.Contains(err.Error(), "lost its "+storeroot.MarkerName+" marker") {
		t.Errorf("got %v; want it to name the lost marker", err)
	}
}

func TestCheckVolumes(t *testing.T) {
	fat := volumetest.Disk("/mnt/fat", "vfat", 10*GiB, 9*GiB)
	facts := volumetest.New(volumetest.Disk(primaryVol, "ext4", 1*GiB, 10*MiB), volumetest.Disk("/mnt/a", "ext4", 1*GiB, 1*GiB), fat)
	if got := newPlacer(facts, place.Reserve{}, true).CheckVolumes(); got != nil {
		t.Errorf("no storage.volumes: got %q", got)
	}
	got := newPlacer(facts, place.Reserve{}, true, "/mnt/a/", "/mnt/fat", "/mnt/typo").CheckVolumes()
	want := []string{
		"storage.volumes: /mnt/fat cannot take rotated packages: unsupported filesystem vfat",
		"storage.volumes: /mnt/typo is not the root of a mounted volume; ignored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", got, want)
	}
	facts.FailVolumes(errors.New("boom"))
	if got := newPlacer(facts, place.Reserve{}, true, "/mnt/a").CheckVolumes(); len(got) != 1 || !strings.Contains(got[0], "boom") {
		t.Errorf("volumes cannot be listed: got %q", got)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1KiB", 1536: "1.5KiB", 51*MiB + MiB/5: "51.2MiB", 3 * GiB: "3GiB", 1 << 40: "1TiB"} {
		if got := place.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d): got %q, want %q", n, got, want)
		}
	}
}

// Paused placements wait until every reason is resumed; a context that
// ends frees the caller.
func TestPauseMakesPlacementsWait(t *testing.T) {
	facts := volumetest.New(volumetest.Disk("/vol", "ext4", 1<<30, 1<<29))
	r := place.NewRotating(place.Options{Primary: "/vol/store", Facts: facts})
	r.Pause("exclusive relocation")
	r.Pause("deciding")
	r.Pause("deciding") // the same reason twice is one
	done := make(chan string, 1)
	go func() {
		root, err := r.Place(context.Background(), api.PackageSummary{ID: "x", Size: 1, FileCount: 1})
		if err != nil {
			t.Error(err)
		}
		done <- root
	}()
	r.Resume("deciding")
	if got := r.Paused(); !slices.Equal(got, []string{"exclusive relocation"}) {
		t.Errorf("paused for %v, want the exclusive relocation only", got)
	}
	select {
	case root := <-done:
		t.Fatalf("placed in %s while paused", root)
	case <-time.After(50 * time.Millisecond):
	}
	r.Resume("exclusive relocation")
	r.Resume("never paused")
	if root := <-done; root != "/vol/store" {
		t.Errorf("placed in %s", root)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.Pause("deciding")
	cancel()
	if _, err := r.Place(ctx, api.PackageSummary{ID: "y"}); err == nil {
		t.Error("a canceled placement while paused did not fail")
	}
}
