package ps_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/place"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
)

// Integration test on real volumes, as root (loopfs skips it otherwise):
// a real daemon against the fake NS, its install dir on a small ext4 that
// fills up, two more ext4 volumes of different sizes, a FAT volume (fusefat)
// and a tmpfs, both larger than the ext4 ones. Candidates are restricted to
// the volumes the test made with storage.volumes, since the machine's own
// disks and other tests' mounts are listed too. Everything mounted is
// unmounted and detached by loopfs's cleanups, after the daemon's (LIFO).

// fixedLoops is a volume.Facts that reports the volumes at roots as fixed
// media. Used only when the images of loopfs do not land on fixed media (a
// container's overlay or a tmpfs /tmp): every other fact stays real.
type fixedLoops struct {
	volume.Facts
	roots []string
}

func (f fixedLoops) fix(v volume.Info) volume.Info {
	if slices.Contains(f.roots, v.Root) {
		v.Fixed, v.FixedReason = true, ""
	}
	return v
}

func (f fixedLoops) Stat(path string) (volume.Info, error) {
	v, err := f.Facts.Stat(path)
	return f.fix(v), err
}

func (f fixedLoops) Volumes() ([]volume.Info, error) {
	vols, err := f.Facts.Volumes()
	for i := range vols {
		vols[i] = f.fix(vols[i])
	}
	return vols, err
}

func TestRotationOnRealVolumes(t *testing.T) {
	loopfs.RequireRoot(t)
	primaryVol := loopfs.Ext4(t, 48)
	volA := loopfs.Ext4(t, 64)
	volB := loopfs.Ext4(t, 96)
	fat := loopfs.FAT(t, 256)
	ram := loopfs.Tmpfs(t, 256)

	// The facts of each volume, as the OS reports them.
	var facts volume.Facts = volume.New()
	hostFixed := true
	for _, tc := range []struct {
		dir, fstype string
		sizeMiB     uint64
		image       bool // loop or FUSE image: fixed when the image is
		supported   bool
	}{
		{primaryVol, "ext4", 48, true, true},
		{volA, "ext4", 64, true, true},
		{volB, "ext4", 96, true, true},
		{fat, "fuse.fusefat", 256, true, false},
		{ram, "tmpfs", 256, false, false},
	} {
		info, err := facts.Stat(filepath.Join(tc.dir, "not", "there"))
		if err != nil {
			t.Fatal(err)
		}
		if tc.image && tc.dir == primaryVol {
			hostFixed = info.Fixed
		}
		wantFixed := tc.image && hostFixed
		if info.Root != tc.dir || info.FSType != tc.fstype || info.Fixed != wantFixed || info.Supported != tc.supported {
			t.Errorf("%s: root %s, type %q, fixed %v (%s), supported %v (%s); want %s, %q, %v, %v", tc.dir,
				info.Root, info.FSType, info.Fixed, info.FixedReason, info.Supported, info.SupportedReason,
				tc.dir, tc.fstype, wantFixed, tc.supported)
		}
		if size := tc.sizeMiB << 20; info.TotalBytes > size || info.TotalBytes < size*3/4 ||
			info.AvailBytes == 0 || info.AvailBytes > info.TotalBytes {
			t.Errorf("%s: total %d, avail %d; want a total near %d", tc.dir, info.TotalBytes, info.AvailBytes, size)
		}
	}
	if !hostFixed {
		t.Logf("loopfs images land on media that is not fixed (set WHARF_LOOPFS_DIR to a folder on a disk to avoid this):" +
			" the ext4 and FAT volumes of this test are reported as fixed to the daemon; every other fact is real")
		facts = fixedLoops{facts, []string{primaryVol, volA, volB, fat}}
	}

	ns := nstest.New(t)
	// One download at a time, so the order of placements is the order of
	// the configuration (the unit tests cover concurrent placements).
	settings := api.AgentSettings{PollWaitSeconds: 30, DownloadConcurrency: 1, AllFixedDrives: true}
	ns.SetSettings(settings)
	cfg := baseConfig(t, ns)
	cfg.InstallDir = filepath.Join(primaryVol, "wharf")
	cfg.Storage.Volumes = []string{volA, volB, fat, ram}
	cfg.Facts = facts
	reserve := place.Reserve{Percent: cfg.Storage.Reserve.Percent, Bytes: cfg.Storage.Reserve.Bytes}
	primary := cfg.PrimaryLocation()
	rootA, rootB := filepath.Join(volA, storeroot.DirName), filepath.Join(volB, storeroot.DirName)

	// Enough 4 MiB packages to fill the primary volume to its reserve,
	// then to bring B (most free space) down to A, then a few more.
	const size = 4 << 20
	need := uint64(size + place.FileSlack)
	room := func(dir string) uint64 {
		v, err := facts.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		return v.AvailBytes - min(v.AvailBytes, reserve.Of(v.TotalBytes))
	}
	freeA, freeB := room(volA), room(volB)
	count := int(room(primaryVol)/need) + int((freeB-freeA)/need) + 4
	t.Logf("publishing %d packages of %s", count, place.FormatSize(size))
	type published struct {
		sum  api.PackageSummary
		data []byte
	}
	var pkgs []published
	for i := range count {
		data := randBytes(size)
		sum := ns.AddPackage(fmt.Sprintf("p%02d", i), "1", map[string][]byte{"pkg.bin": data})
		pkgs = append(pkgs, published{sum, data})
	}

	r := start(t, cfg)
	where := map[string][]int{} // store root → package numbers, in order
	var order []string          // the root of each package, in order
	for i, p := range pkgs {
		st, ok := ns.WaitState("ps1", p.sum.ID, api.StateReady, 60*time.Second)
		if !ok {
			t.Fatalf("package %d: got %+v, want ready", i, st)
		}
		root := filepath.Dir(st.Path)
		where[root] = append(where[root], i)
		order = append(order, root)
	}
	t.Logf("placements: primary %v, A %v, B %v", where[primary], where[rootA], where[rootB])

	// The primary volume took packages first, as long as it kept its
	// reserve, and is now too full for one more.
	nPrimary := len(where[primary])
	if nPrimary == 0 || !slices.Equal(where[primary], seq(0, nPrimary)) {
		t.Errorf("packages on the primary volume: %v; want the first ones", where[primary])
	}
	if left := room(primaryVol); left >= need {
		t.Errorf("primary volume keeps %s above its reserve, room for another package", place.FormatSize(left))
	}
	if v, _ := facts.Stat(primaryVol); v.AvailBytes+(1<<20) < reserve.Of(v.TotalBytes) {
		t.Errorf("primary volume went below its reserve: %s free, reserve %s",
			place.FormatSize(v.AvailBytes), place.FormatSize(reserve.Of(v.TotalBytes)))
	}
	// Then rotation: to B, which had the most free space, until A had as
	// much; both then take turns, so they end within a package of each
	// other.
	if len(order) > nPrimary && order[nPrimary] != rootB {
		t.Errorf("first rotated package went to %s, want %s (most free space)", order[nPrimary], rootB)
	}
	if len(where[rootA]) == 0 || len(where[rootB]) <= len(where[rootA]) {
		t.Errorf("rotated packages: %d on A, %d on B; want some on A, more on B", len(where[rootA]), len(where[rootB]))
	}
	if a, b := room(volA), room(volB); max(a, b)-min(a, b) > 2*need {
		t.Errorf("room left above the reserve: A %s, B %s; want them within a package or two", place.FormatSize(a), place.FormatSize(b))
	}
	if len(where) != 3 {
		t.Errorf("store roots used: %v; want the primary, A and B", slices.Sorted(maps.Keys(where)))
	}
	// FAT and tmpfs are never chosen, though they have the most space.
	for _, dir := range []string{fat, ram} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s was written to: %v", dir, entries)
		}
	}
	for _, root := range []string{primary, rootA, rootB} {
		if ok, err := storeroot.New(fsys.OS{}, "", nil).HasMarker(root); !ok {
			t.Errorf("store root %s has no marker: %v", root, err)
		}
		noLeftovers(t, root)
	}

	// Serving resolves each package where it is.
	for _, root := range []string{primary, rootA, rootB} {
		i := where[root][len(where[root])-1]
		code, body := fetchURL(t, r.d.URL()+"/packages/"+pkgs[i].sum.ID+"/pkg.bin")
		if code != 200 || !bytes.Equal([]byte(body), pkgs[i].data) {
			t.Errorf("serve package %d from %s: HTTP %d, %d bytes", i, root, code, len(body))
		}
	}
	ac := admin.NewClient(admin.SocketPath(cfg.InstallDir))
	status, err := ac.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range status.Packages {
		i := slices.IndexFunc(pkgs, func(q published) bool { return q.sum.ID == p.ID })
		if want := filepath.Join(order[i], p.ID); p.Path != want || p.State != api.StateReady {
			t.Errorf("status of package %d: %s at %s, want ready at %s", i, p.State, p.Path, want)
		}
	}

	// A custom-location package goes to its custom location, never
	// rotated: here on the full primary volume, though a package of its
	// size (more than the room above the reserve, less than the free
	// space) would rotate.
	pv, err := facts.Stat(primaryVol)
	if err != nil {
		t.Fatal(err)
	}
	customSize := int(room(primaryVol) + reserve.Of(pv.TotalBytes)/2)
	customDir := filepath.Join(primaryVol, "custom apps")
	customData := randBytes(customSize)
	c := ns.AddPackage("custom", "1", map[string][]byte{"c.bin": customData},
		func(s *api.PackageSummary) { s.CustomLocation = customDir })
	if st, ok := ns.WaitState("ps1", c.ID, api.StateReady, 20*time.Second); !ok || st.Path != filepath.Join(customDir, c.ID) {
		t.Errorf("custom-location package of %s: got %+v, want ready in %s", place.FormatSize(uint64(customSize)), st, customDir)
	}
	if ok, err := storeroot.New(fsys.OS{}, "", nil).HasMarker(customDir); !ok {
		t.Errorf("custom location has no marker: %v", err)
	}
	if code, body := fetchURL(t, r.d.URL()+"/packages/"+c.ID+"/c.bin"); code != 200 || !bytes.Equal([]byte(body), customData) {
		t.Errorf("serve the custom-location package: HTTP %d, %d bytes", code, len(body))
	}

	// The switch goes off: the next package fails cleanly, with nothing
	// written anywhere.
	settings.AllFixedDrives = false
	ns.SetSettings(settings)
	x := ns.AddPackage("x", "1", map[string][]byte{"pkg.bin": randBytes(size)})
	st, ok := ns.WaitState("ps1", x.ID, api.StateFailed, 20*time.Second)
	if want := "not enough space on " + primaryVol + ": need 4MiB, "; !ok || !strings.Contains(st.Reason, want) {
		t.Errorf("switch off: got %+v, want failed with %q", st, want)
	}
	for _, root := range []string{primary, rootA, rootB} {
		noLeftovers(t, root)
		if _, err := os.Lstat(filepath.Join(root, x.ID)); !os.IsNotExist(err) {
			t.Errorf("package that found no room is in %s: %v", root, err)
		}
	}

	// On again: placed at once, on the ext4 volume with more free space.
	settings.AllFixedDrives = true
	wantRoot := rootA
	if room(volB) > room(volA) {
		wantRoot = rootB
	}
	ns.SetSettings(settings)
	if st, ok := ns.WaitState("ps1", x.ID, api.StateReady, 20*time.Second); !ok || filepath.Dir(st.Path) != wantRoot {
		t.Errorf("switch on again: got %+v, want ready in %s", st, wantRoot)
	}
	pkgs = append(pkgs, published{x, nil})
	where[wantRoot] = append(where[wantRoot], len(pkgs)-1)

	// B is unmounted: its packages are unavailable, not served, not
	// forgotten, and nothing is written on the empty mount point. (Serving
	// keeps the files it served open for a second after their last
	// request: the volume is busy until then.)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command("umount", volB).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("umount %s: %v\n%s", volB, err, out)
		}
	}
	if err := ac.UpdateConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, i := range where[rootB] {
		if st, ok := ns.WaitState("ps1", pkgs[i].sum.ID, api.StateUnavailable, 10*time.Second); !ok {
			t.Errorf("package %d on the unmounted volume: %+v, want unavailable", i, st)
		}
	}
	i := where[rootB][0]
	if code, _ := fetchURL(t, r.d.URL()+"/packages/"+pkgs[i].sum.ID+"/pkg.bin"); code != 404 {
		t.Errorf("serve from the unmounted volume: HTTP %d, want 404", code)
	}
	y := ns.AddPackage("y", "1", map[string][]byte{"pkg.bin": randBytes(size)})
	if st, ok := ns.WaitState("ps1", y.ID, api.StateReady, 20*time.Second); !ok || filepath.Dir(st.Path) != rootA {
		t.Errorf("package after B was unmounted: got %+v, want ready in %s", st, rootA)
	}
	if entries, _ := os.ReadDir(volB); len(entries) != 0 {
		t.Errorf("written on the mount point of the unmounted volume: %v", entries)
	}
	status, err = ac.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	unavailable := 0
	for _, p := range status.Packages {
		if p.State == api.StateUnavailable {
			unavailable++
		}
	}
	if unavailable != len(where[rootB]) {
		t.Errorf("status lists %d unavailable packages, want %d", unavailable, len(where[rootB]))
	}
	r.stop(t)
}

// noLeftovers fails when a store root holds temporary or trash entries.
func noLeftovers(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{storeroot.DownloadDir, storeroot.TrashDir} {
		if entries, _ := os.ReadDir(filepath.Join(root, d)); len(entries) != 0 {
			t.Errorf("leftovers in %s: %v", filepath.Join(root, d), entries)
		}
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
