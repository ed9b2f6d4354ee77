// Package volumetest provides Fake, an in-memory volume.Facts for tests: a
// test describes any set of volumes (an ext4 data disk, a full root, a
// read-only or excluded drive, a tmpfs) and changes them while the code
// under test runs.
package volumetest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Fake is a volume.Facts over a set of volumes keyed by Root. Stat resolves
// a path to the volume with the longest Root holding it, lexically (no
// symlinks, nothing on disk is read). The zero value has no volumes and is
// ready to use; methods are safe for concurrent use.
type Fake struct {
	mu         sync.Mutex
	vols       map[string]volume.Info
	statErr    map[string]error
	volumesErr error
	nextDev    uint64
}

var _ volume.Facts = (*Fake)(nil)

// New returns a Fake holding vols (see Add).
func New(vols ...volume.Info) *Fake {
	f := &Fake{}
	for _, v := range vols {
		f.Add(v)
	}
	return f
}

// Disk returns the Info of a writable fixed volume mounted at root with
// filesystem fstype, supported as on Linux or Windows (ext4, xfs, NTFS...),
// of total bytes with avail bytes available. Change fields of the result to
// describe anything else.
func Disk(root, fstype string, total, avail uint64) volume.Info {
	v := volume.Info{Root: root, FSType: fstype, TotalBytes: total, AvailBytes: avail, Fixed: true}
	v.Supported, v.SupportedReason = volume.SupportedFS("linux", fstype)
	if ok, _ := volume.SupportedFS("windows", fstype); ok {
		v.Supported, v.SupportedReason = true, ""
	}
	return v
}

// Add adds v, replacing any volume with the same Root. Root is cleaned and
// Path set to it; a zero DevID gets a unique one and an empty Device
// becomes "fake:<root>", so distinct volumes never look like bind mounts of
// one filesystem unless the test says so.
func (f *Fake) Add(v volume.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vols == nil {
		f.vols = map[string]volume.Info{}
	}
	v.Root = filepath.Clean(v.Root)
	v.Path = v.Root
	if v.DevID == 0 {
		f.nextDev++
		v.DevID = 1<<32 + f.nextDev
	}
	if v.Device == "" {
		v.Device = "fake:" + v.Root
	}
	f.vols[v.Root] = v
}

// Remove removes the volume at root, as if unmounted.
func (f *Fake) Remove(root string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vols, filepath.Clean(root))
}

// Update calls fn on the volume at root and stores the result; it panics if
// there is none (a mistake in the test).
func (f *Fake) Update(root string, fn func(*volume.Info)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	root = filepath.Clean(root)
	v, ok := f.vols[root]
	if !ok {
		panic("volumetest: no volume at " + root)
	}
	fn(&v)
	v.Root, v.Path = root, root
	f.vols[root] = v
}

// SetAvail sets the available bytes of the volume at root.
func (f *Fake) SetAvail(root string, avail uint64) {
	f.Update(root, func(v *volume.Info) { v.AvailBytes = avail })
}

// FailStat makes Stat of any path on the volume at root fail with err
// (wrapped with the path); a nil err clears it.
func (f *Fake) FailStat(root string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statErr == nil {
		f.statErr = map[string]error{}
	}
	root = filepath.Clean(root)
	if err == nil {
		delete(f.statErr, root)
		return
	}
	f.statErr[root] = err
}

// FailVolumes makes Volumes fail with err; a nil err clears it.
func (f *Fake) FailVolumes(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumesErr = err
}

// Stat implements volume.Facts. A path on no volume fails with an error
// matching wharf.ErrNotFound.
func (f *Fake) Stat(path string) (volume.Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return volume.Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	best, found := "", false
	for root := range f.vols {
		if under(abs, root) && (!found || len(root) > len(best)) {
			best, found = root, true
		}
	}
	if !found {
		return volume.Info{}, fmt.Errorf("stat volume of %s: no volume holds it: %w", path, wharf.ErrNotFound)
	}
	if err := f.statErr[best]; err != nil {
		return volume.Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	v := f.vols[best]
	v.Path = abs
	return v, nil
}

// Volumes implements volume.Facts, listing the volumes sorted by Root.
func (f *Fake) Volumes() ([]volume.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.volumesErr != nil {
		return nil, fmt.Errorf("list volumes: %w", f.volumesErr)
	}
	out := make([]volume.Info, 0, len(f.vols))
	for _, v := range f.vols {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b volume.Info) int { return strings.Compare(a.Root, b.Root) })
	return out, nil
}

// under reports whether the clean path p is root or below it.
func under(p, root string) bool {
	if p == root {
		return true
	}
	return strings.HasPrefix(p, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}
