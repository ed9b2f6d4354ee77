// Package place decides which store root a new package goes to (SPEC §4).
//
// # Rules
//
// [Rotating] is the Package Server's placer. For each new package it picks:
//
//  1. the package's custom location C, when the manifest has one: the
//     package is stored at C/<package id>/, with no space check, and is never
//     rotated (nor, later, relocated);
//  2. else the primary location (<install dir>/Package Delivery until a
//     policy says otherwise, see [Rotating.SetPrimary]), when the primary
//     volume keeps its reserve after the package: free − held − need ≥
//     reserve;
//  3. else, when "allow usage of all fixed drives" is on
//     ([Rotating.SetAllFixedDrives]), <volume root>/Package Delivery/ on the
//     eligible volume ([volume.Eligible]: fixed, supported filesystem,
//     writable, no NO_WHARF_ON_DRIVE, within storage.volumes when that list
//     is set) other than the primary's own, that has the most free space and
//     keeps its own reserve after the package. Such packages are "rotated";
//  4. else nothing: Place fails with a [*SpaceError] (wrapping
//     wharf.ErrNoSpace) that says "not enough space on <volume root>: need X,
//     Y free, reserve Z". The caller has written nothing yet.
//
// Free is the volume's AvailBytes (what an unprivileged writer may still
// use). Need is the package's bytes plus [FileSlack] per file, for the
// blocks and folder entries a file takes beyond its bytes. Reserve is
// [Reserve] of the volume: a share of its size or a fixed number of bytes
// (PS config storage.reserve, default 5%).
//
// # Space held by downloads in flight
//
// A download that has been placed but not yet written would be invisible to
// the next placement, so two downloads could both take the last free space.
// The placer keeps a small ledger: Place holds the package's need on the
// chosen volume, [Rotating.Hold] does the same for a download resumed in a
// known root, and [Rotating.Release] drops it when the download attempt
// ends (whatever its outcome; finished bytes are then in AvailBytes). Bytes
// a download in flight has already written are counted twice, once in
// AvailBytes and once held: the placer errs on the side of rotating early.
//
// A custom location C is a store root of its own (marker, temp and trash
// folders inside C), so several custom-location packages may share one and
// the crash-safety rules are the same everywhere; so is every rotated root.
package place

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// FileSlack is what a file is counted to take on a volume beyond its bytes:
// the rounding of its last block and its folder entry.
const FileSlack = 4096

// Need returns the bytes pkg is counted to take on a volume: its Size plus
// FileSlack per file.
func Need(pkg api.PackageSummary) uint64 {
	return uint64(max(pkg.Size, 0)) + uint64(max(pkg.FileCount, 0))*FileSlack
}

// Primary places every package in Dir (the primary location), except
// packages with a custom location, which go there. It checks no space; the
// fetcher's own tests use it.
type Primary struct {
	Dir string
}

// Place returns the store root for pkg. A custom location that is not an
// absolute path on this PS's OS is refused with an error wrapping
// wharf.ErrInvalid.
func (p Primary) Place(_ context.Context, pkg api.PackageSummary) (string, error) {
	if pkg.CustomLocation == "" {
		return p.Dir, nil
	}
	return customRoot(pkg)
}

// customRoot checks and cleans pkg's custom location.
func customRoot(pkg api.PackageSummary) (string, error) {
	c := pkg.CustomLocation
	if !filepath.IsAbs(c) || strings.IndexByte(c, 0) >= 0 {
		return "", fmt.Errorf("custom location %q of package %s is not an absolute path on %s: %w",
			c, pkg.ID, runtime.GOOS, wharf.ErrInvalid)
	}
	return filepath.Clean(c), nil
}

// Reserve is the free space a volume keeps: Percent of its size, or Bytes
// when Bytes > 0 (the PS config's storage.reserve).
type Reserve struct {
	Percent float64
	Bytes   int64
}

// Of returns the reserve on a volume of total bytes.
func (r Reserve) Of(total uint64) uint64 {
	if r.Bytes > 0 {
		return uint64(r.Bytes)
	}
	if r.Percent <= 0 {
		return 0
	}
	return uint64(float64(total) * r.Percent / 100)
}

// Index is what the placer asks of the state DB; *store.Store implements
// it. HasPackagesIn reports whether any package of the index is in root.
type Index interface {
	HasPackagesIn(root string) bool
}

// Markers tells whether a store root has its marker;
// *storeroot.Roots implements it.
type Markers interface {
	HasMarker(root string) (bool, error)
}

// Options configure a Rotating placer.
type Options struct {
	// Primary is the primary location, an absolute folder.
	Primary string
	// Facts answers questions about volumes; default volume.New().
	Facts volume.Facts
	// Reserve is the free space every volume keeps.
	Reserve Reserve
	// Volumes, when not empty, are the only volumes rotation may use (PS
	// config storage.volumes: mount points, or drive roots on Windows).
	Volumes []string
	// Index and Markers, when set, let the placer skip a volume whose
	// rotated root holds packages of the index but lost its marker (a
	// different filesystem mounted there, a marker deleted): its packages
	// are unavailable, and nothing new goes there until it is back.
	Index   Index
	Markers Markers
	// Logger receives the placement decisions; default: discard.
	Logger *slog.Logger
}

// Rotating places packages by the rules of the package doc. Create it with
// NewRotating; all methods are safe for concurrent use.
type Rotating struct {
	facts   volume.Facts
	reserve Reserve
	only    []string
	index   Index
	markers Markers
	log     *slog.Logger

	mu       sync.Mutex
	primary  string
	allFixed bool
	held     map[string]hold // package id → space held for its download
	paused   map[string]bool // reasons new placements wait for
	resumed  chan struct{}   // closed when the last reason goes
}

type hold struct {
	dev   uint64 // volume.Info.DevID of the volume
	root  string // the volume's root, for messages
	bytes uint64
}

// NewRotating returns a placer with "allow usage of all fixed drives" off
// until SetAllFixedDrives says otherwise.
func NewRotating(opt Options) *Rotating {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Facts == nil {
		opt.Facts = volume.New()
	}
	return &Rotating{
		facts:   opt.Facts,
		reserve: opt.Reserve,
		only:    slices.Clone(opt.Volumes),
		index:   opt.Index,
		markers: opt.Markers,
		log:     opt.Logger.With("component", "place"),
		primary: filepath.Clean(opt.Primary),
		held:    map[string]hold{},
		paused:  map[string]bool{},
	}
}

// SetAllFixedDrives sets the policy switch "allow usage of all fixed
// drives" for the placements that follow (packages placed already stay
// where they are). It reports whether the value changed. The daemon calls
// it with every configuration it applies, so a policy change takes effect
// without a restart.
func (r *Rotating) SetAllFixedDrives(on bool) (changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed = r.allFixed != on
	r.allFixed = on
	return changed
}

// AllFixedDrives returns the current value of the switch.
func (r *Rotating) AllFixedDrives() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.allFixed
}

// SetPrimary changes the primary location for the placements that follow;
// packages placed already stay where they are. Moving them is relocation's
// business: the relocation engine calls this when a new primary location
// took effect (SPEC §6), so new downloads go to the new location at once.
func (r *Rotating) SetPrimary(dir string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.primary = filepath.Clean(dir)
}

// Pause makes new placements wait — Place blocks until Resume was called
// for every reason paused, or its context ends — for reason: an exclusive
// relocation, or a new storage location not decided yet (see package
// location). Reasons are independent; pausing one twice is pausing it
// once. Downloads placed already go on.
func (r *Rotating) Pause(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.paused) == 0 {
		r.resumed = make(chan struct{})
		r.log.Info("new placements paused", "reason", reason)
	}
	r.paused[reason] = true
}

// Resume ends the pause for reason; placements go on once no reason is
// left. Resuming a reason not paused does nothing.
func (r *Rotating) Resume(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.paused[reason] {
		return
	}
	delete(r.paused, reason)
	if len(r.paused) == 0 {
		close(r.resumed)
		r.resumed = nil
		r.log.Info("new placements go on", "reason", reason)
	}
}

// Paused returns the reasons placements wait for now, sorted.
func (r *Rotating) Paused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.paused))
	for k := range r.paused {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Primary returns the current primary location.
func (r *Rotating) Primary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.primary
}

// Place returns the store root for pkg by the rules of the package doc and
// holds pkg's need on its volume until Release(pkg.ID). While placements
// are paused it waits (and fails with ctx's error if ctx ends first). A custom location
// that is not absolute fails with an error wrapping wharf.ErrInvalid;
// missing space with a *SpaceError wrapping wharf.ErrNoSpace. When the
// facts of the primary volume cannot be read (an OS without volume support),
// the package goes to the primary location unchecked; a full disk then
// fails its download instead.
func (r *Rotating) Place(ctx context.Context, pkg api.PackageSummary) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.paused) > 0 {
		wait := r.resumed
		r.mu.Unlock()
		select {
		case <-wait:
			r.mu.Lock()
		case <-ctx.Done():
			r.mu.Lock()
			return "", ctx.Err()
		}
	}
	delete(r.held, pkg.ID) // placed again: its old hold is void
	log := r.log.With("package", pkg.ID)
	need := Need(pkg)

	if pkg.CustomLocation != "" {
		root, err := customRoot(pkg)
		if err != nil {
			return "", err
		}
		if info, err := r.facts.Stat(root); err == nil {
			r.holdLocked(pkg.ID, info, need)
		}
		return root, nil
	}

	pi, err := r.facts.Stat(r.primary)
	if err != nil {
		log.Warn("cannot read the primary volume's free space; placing the package there unchecked",
			"path", r.primary, "err", err)
		return r.primary, nil
	}
	short := r.checkLocked(pi, need)
	if short == nil {
		r.holdLocked(pkg.ID, pi, need)
		return r.primary, nil
	}
	if !r.allFixed {
		return "", short
	}

	vols, err := volume.Eligible(r.facts, volume.EligibleOptions{Only: r.only})
	if err != nil {
		return "", fmt.Errorf("%w; no other volume could be looked at: %v", short, err)
	}
	type cand struct {
		info volume.Info
		free uint64
	}
	var cands []cand
	for _, v := range vols {
		if v.DevID == pi.DevID {
			continue // the primary's own volume, which is full
		}
		cands = append(cands, cand{v, r.freeLocked(v)})
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(b.free, a.free); c != 0 {
			return c
		}
		return cmp.Compare(a.info.Root, b.info.Root)
	})
	var refused []string
	for _, c := range cands {
		root := filepath.Join(c.info.Root, storeroot.DirName)
		if r.lostMarker(root) {
			refused = append(refused, fmt.Sprintf("%s: store root %s lost its %s marker", c.info.Root, root, storeroot.MarkerName))
			continue
		}
		if e := r.checkLocked(c.info, need); e != nil {
			refused = append(refused, fmt.Sprintf("%s: %s free, reserve %s", c.info.Root, FormatSize(e.Free), FormatSize(e.Reserve)))
			continue
		}
		r.holdLocked(pkg.ID, c.info, need)
		log.Info("primary volume is short of space; rotating the package onto another volume",
			"name", pkg.Name, "version", pkg.Version, "primary", r.primary, "reason", short.Error(),
			"volume", c.info.Root, "root", root, "free", FormatSize(c.free))
		return root, nil
	}
	if len(refused) == 0 {
		return "", fmt.Errorf("%w; no other eligible volume for rotation", short)
	}
	return "", fmt.Errorf("%w; no other eligible volume has room (%s)", short, strings.Join(refused, "; "))
}

// CheckVolumes returns a problem for each entry of storage.volumes (see
// Options.Volumes) that cannot take rotated packages now: one that is not
// the root of a mounted volume (a typo, a volume not mounted) or an
// ineligible volume, with the reason. The daemon logs them at start, so
// they show before the primary volume fills up. The error of listing the
// volumes is returned as a problem too.
func (r *Rotating) CheckVolumes() []string {
	if len(r.only) == 0 {
		return nil
	}
	vols, err := r.facts.Volumes()
	if err != nil {
		return []string{fmt.Sprintf("storage.volumes cannot be checked: %v", err)}
	}
	var out []string
	for _, want := range r.only {
		i := slices.IndexFunc(vols, func(v volume.Info) bool { return samePath(v.Root, want) })
		if i < 0 {
			out = append(out, fmt.Sprintf("storage.volumes: %s is not the root of a mounted volume; ignored", want))
			continue
		}
		if why := volume.Ineligible(vols[i], volume.EligibleOptions{}); why != "" {
			out = append(out, fmt.Sprintf("storage.volumes: %s cannot take rotated packages: %s", want, why))
		}
	}
	return out
}

// samePath compares two paths after cleaning, without regard to case on
// Windows, as volume.Eligible matches storage.volumes.
func samePath(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// lostMarker reports whether root holds packages of the index but has no
// marker.
func (r *Rotating) lostMarker(root string) bool {
	if r.index == nil || r.markers == nil || !r.index.HasPackagesIn(root) {
		return false
	}
	ok, err := r.markers.HasMarker(root)
	return !ok || err != nil
}

// checkLocked returns nil when v keeps its reserve after need more bytes,
// else the SpaceError saying why not.
func (r *Rotating) checkLocked(v volume.Info, need uint64) *SpaceError {
	free, res := r.freeLocked(v), r.reserve.Of(v.TotalBytes)
	if free >= need && free-need >= res {
		return nil
	}
	return &SpaceError{Volume: v.Root, Need: need, Free: free, Reserve: res, Held: r.heldLocked(v.DevID)}
}

// freeLocked is v's available bytes less what downloads in flight hold
// there.
func (r *Rotating) freeLocked(v volume.Info) uint64 {
	held := r.heldLocked(v.DevID)
	if held >= v.AvailBytes {
		return 0
	}
	return v.AvailBytes - held
}

func (r *Rotating) heldLocked(dev uint64) uint64 {
	var n uint64
	for _, h := range r.held {
		if h.dev == dev {
			n += h.bytes
		}
	}
	return n
}

func (r *Rotating) holdLocked(id string, v volume.Info, need uint64) {
	r.held[id] = hold{dev: v.DevID, root: v.Root, bytes: need}
}

// Hold counts the need of pkg (see Need) on the volume of root until
// Release(pkg.ID), for a download that resumes in root without being placed
// again. A root whose volume cannot be read holds nothing.
func (r *Rotating) Hold(pkg api.PackageSummary, root string) {
	info, err := r.facts.Stat(root)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holdLocked(pkg.ID, info, Need(pkg))
}

// Release drops the space held for package id; an id without a hold is
// ignored.
func (r *Rotating) Release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.held, id)
}

// Held returns the bytes downloads in flight hold on the volume holding
// path (0 when it cannot be read).
func (r *Rotating) Held(path string) uint64 {
	info, err := r.facts.Stat(path)
	if err != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.heldLocked(info.DevID)
}

// SpaceError is a volume that cannot take a package and keep its reserve.
// It wraps wharf.ErrNoSpace.
type SpaceError struct {
	Volume  string // the volume's root
	Need    uint64 // what the package is counted to take (see Need)
	Free    uint64 // available bytes less Held
	Reserve uint64 // what the volume keeps
	Held    uint64 // the bytes downloads in flight hold on the volume
}

func (e *SpaceError) Error() string {
	held := ""
	if e.Held > 0 {
		held = " after " + FormatSize(e.Held) + " held by downloads in progress"
	}
	return fmt.Sprintf("not enough space on %s: need %s, %s free%s, reserve %s",
		e.Volume, FormatSize(e.Need), FormatSize(e.Free), held, FormatSize(e.Reserve))
}

// Unwrap returns wharf.ErrNoSpace.
func (e *SpaceError) Unwrap() error { return wharf.ErrNoSpace }

// FormatSize prints bytes with a binary unit and at most one decimal
// ("3.2MiB", "512B"), as wharf.FormatSize does.
func FormatSize(n uint64) string {
	for _, u := range []struct {
		name string
		size uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			s := strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64)
			return strings.TrimSuffix(s, ".0") + u.name
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}
