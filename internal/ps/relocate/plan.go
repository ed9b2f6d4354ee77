package relocate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Reserve is the free space the target volume must keep after the move:
// Percent of the volume's size, or Bytes when Bytes > 0 (the PS config's
// storage.reserve).
type Reserve struct {
	Percent float64 `json:"percent,omitempty"`
	Bytes   int64   `json:"bytes,omitempty"`
}

// bytesOf returns the reserve on a volume of total bytes.
func (r Reserve) bytesOf(total uint64) uint64 {
	if r.Bytes > 0 {
		return uint64(r.Bytes)
	}
	if r.Percent <= 0 {
		return 0
	}
	return uint64(float64(total) * r.Percent / 100)
}

// Request says what a relocation attempt (or a plan) is about.
type Request struct {
	// Target is the new primary location: an absolute path.
	Target string `json:"target"`
	// From is the PS's primary location before this attempt, where new
	// downloads went. A target inside it is refused, and packages from
	// other roots are "rotated": moving them consolidates the store.
	From string `json:"from,omitempty"`
	// Default is the default location (<install dir>/Package Delivery),
	// always allowed by the known-folder check.
	Default string `json:"default,omitempty"`
	// Reserve is the free space to keep on the target volume.
	Reserve Reserve `json:"reserve"`
	// Retry touches only packages behind a link (an automatic or manual
	// retry after a warning). A new target (a policy change) touches
	// every package not custom and not already at the target.
	Retry bool `json:"retry,omitempty"`
	// Manual marks an attempt started by hand (the manual status bit).
	Manual bool `json:"manual,omitempty"`
}

// Check is the verdict of one prerequisite (SPEC §6.1).
type Check struct {
	// Name is the status flag the prerequisite sets when it fails
	// ("not-fixed-media", "unsupported-filesystem", "insufficient-space",
	// "known-folder", "path-too-long", "invalid-target").
	Name string                 `json:"name"`
	Bit  wharf.RelocationStatus `json:"bit"`
	OK   bool                   `json:"ok"`
	// Skipped marks a check that could not be made because the target
	// is not an absolute path (which fails invalid-target), or, for the
	// valid-target check, because a name in it is too long (which fails
	// path-too-long); it sets no bit.
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Plan is the evaluation of a target before anything moves (SPEC §6.1,
// §6.5): what `wharf ps relocate --plan` prints and what the NS's Check
// action shows. It encodes to JSON as is.
type Plan struct {
	Target string `json:"target"`
	// OK is set when every prerequisite passed; Status then is 0, else
	// the bits of every prerequisite that failed, and StatusFlags their
	// names.
	OK            bool                   `json:"ok"`
	Status        wharf.RelocationStatus `json:"status"`
	StatusFlags   []string               `json:"status_flags"`
	Prerequisites []Check                `json:"prerequisites"`

	// The target volume, as volume.Facts describes it.
	VolumeRoot     string `json:"volume_root,omitempty"`
	FSType         string `json:"fs_type,omitempty"`
	VolumeTotalMiB uint64 `json:"volume_total_mib"`

	// Space: NeededBytes (the bytes of every package to move that is not
	// on the target volume, plus ReserveBytes) against FreeBytes (what an
	// unprivileged writer may still use there).
	NeededBytes  uint64 `json:"needed_bytes"`
	NeededMiB    uint64 `json:"needed_mib"`
	FreeBytes    uint64 `json:"free_bytes"`
	FreeMiB      uint64 `json:"free_mib"`
	ReserveBytes uint64 `json:"reserve_bytes"`
	// RequiredMiB is what all the PS's packages (custom-location ones
	// excepted) take; UsedMiB what those already on the target volume take.
	RequiredMiB uint64 `json:"required_mib"`
	UsedMiB     uint64 `json:"used_mib"`

	// Path length: the longest path the store will hold at the target
	// and its length against the limit, in PathUnit. When packages are
	// copied, the check is made on the longer temporary path they are
	// copied to (CheckedPath).
	LongestPath    string `json:"longest_path,omitempty"`
	LongestPathLen int    `json:"longest_path_len"`
	CheckedPath    string `json:"checked_path,omitempty"`
	PathLimit      int    `json:"path_limit"`
	PathUnit       string `json:"path_unit"`

	// Packages: how many would move by rename (same volume) and by copy,
	// how many of those are behind a link now (Relinks) or rotated onto
	// another root (Rotated), how many are already at the target, left
	// alone (a retry leaves packages not behind a link), or custom.
	ByRename     int   `json:"by_rename"`
	ByCopy       int   `json:"by_copy"`
	CopyBytes    int64 `json:"copy_bytes"`
	Relinks      int   `json:"relinks"`
	Rotated      int   `json:"rotated"`
	AlreadyThere int   `json:"already_there"`
	Untouched    int   `json:"untouched"`
	Custom       int   `json:"custom"`

	// EstimateSeconds is a rough time for the move: the bytes to copy at
	// the engine's estimate rate plus a little per rename.
	EstimateSeconds float64 `json:"estimate_seconds"`
}

// Estimate returns EstimateSeconds as a duration.
func (p *Plan) Estimate() time.Duration {
	return time.Duration(p.EstimateSeconds * float64(time.Second))
}

// String is a short summary for logs.
func (p *Plan) String() string {
	if p.OK {
		return fmt.Sprintf("target %s ok: %d by rename, %d by copy (%d MiB), %d MiB needed of %d MiB free",
			p.Target, p.ByRename, p.ByCopy, mib(uint64(p.CopyBytes)), p.NeededMiB, p.FreeMiB)
	}
	var fails []string
	for _, c := range p.Prerequisites {
		if !c.OK {
			fails = append(fails, c.Name+": "+c.Detail)
		}
	}
	return fmt.Sprintf("target %s refused: %s", p.Target, strings.Join(fails, "; "))
}

func mib(b uint64) uint64   { return b >> 20 }
func mibUp(b uint64) uint64 { return (b + 1<<20 - 1) >> 20 }

// volumeEntries are a volume's own entries, which do not make a target
// folder non-empty (SPEC §6.1.6).
var volumeEntries = []string{"lost+found", "System Volume Information", "$RECYCLE.BIN"}

// Plan evaluates req.Target against every prerequisite (SPEC §6.1) and
// counts what a relocation would do, moving nothing. It reads the whole
// index, one page at a time. The error is for a failure to evaluate (the
// index cannot be read); a failed prerequisite is a verdict in the Plan.
// Plan writes (and removes at once) one small probe file to learn whether
// the target, or its nearest existing parent, is writable.
func (e *Engine) Plan(ctx context.Context, req Request) (*Plan, error) {
	p := &Plan{Target: req.Target, PathLimit: e.limits.MaxPath, PathUnit: "bytes"}
	if e.limits.UTF16 {
		p.PathUnit = "characters"
	}
	abs := filepath.IsAbs(req.Target)
	target := filepath.Clean(req.Target)
	fail := map[wharf.RelocationStatus]string{}
	failf := func(bit wharf.RelocationStatus, format string, args ...any) {
		if _, seen := fail[bit]; !seen { // the first reason of each is kept
			fail[bit] = fmt.Sprintf(format, args...)
		}
	}
	pass := map[wharf.RelocationStatus]string{}
	// skip holds the checks that could not be made, with why; they set no
	// bit (another check reports the cause).
	skip := map[wharf.RelocationStatus]string{}

	// 1, 2: fixed media, supported filesystem — from the volume facts.
	var info volume.Info
	var verr error
	if !abs {
		verr = fmt.Errorf("%q is not an absolute path", req.Target)
	} else {
		info, verr = e.facts.Stat(target)
	}
	switch {
	case !abs:
	case verr != nil:
		for _, bit := range []wharf.RelocationStatus{wharf.RelocationNotFixedMedia, wharf.RelocationUnsupportedFilesystem, wharf.RelocationInsufficientSpace} {
			failf(bit, "cannot tell the target volume: %v", verr)
		}
	default:
		p.VolumeRoot, p.FSType = info.Root, info.FSType
		p.VolumeTotalMiB = mib(info.TotalBytes)
		p.FreeBytes, p.FreeMiB = info.AvailBytes, mib(info.AvailBytes)
		if !info.Fixed {
			failf(wharf.RelocationNotFixedMedia, "volume %s is not fixed media: %s", info.Root, info.FixedReason)
		} else {
			pass[wharf.RelocationNotFixedMedia] = fmt.Sprintf("volume %s is fixed media", info.Root)
		}
		if !info.Supported {
			failf(wharf.RelocationUnsupportedFilesystem, "volume %s: %s", info.Root, info.SupportedReason)
		} else {
			pass[wharf.RelocationUnsupportedFilesystem] = fmt.Sprintf("%s supports links", info.FSType)
		}
	}

	// 4: known folder; the default location is always allowed.
	switch {
	case !abs:
	case req.Default != "" && samePath(target, req.Default):
		pass[wharf.RelocationKnownFolder] = "the default location"
	default:
		if known, which := e.knownFolder(target); known {
			failf(wharf.RelocationKnownFolder, "%s is the system folder %s or below it", target, which)
		} else {
			pass[wharf.RelocationKnownFolder] = "not a system folder"
		}
	}

	// 6: a valid target, as far as the target alone tells.
	if abs {
		e.checkTargetFolder(target, req, info, verr, failf, pass, skip)
	} else {
		failf(wharf.RelocationInvalidTarget, "%q is not an absolute path", req.Target)
	}

	// The packages: 3 (space), 5 (path length), 6 (not inside one).
	devs := map[string]devAnswer{} // store root → volume of it
	var longest string             // "<id>/<longest relative path>"
	longestLen := -1
	var needed, required, used uint64
	err := e.eachPackage(ctx, func(pk Package) error {
		folder := filepath.Clean(pk.Folder)
		if abs && (target == folder || isBelow(target, folder)) {
			failf(wharf.RelocationInvalidTarget, "%s is inside package %s at %s", target, pk.ID, folder)
		}
		if pk.Custom {
			p.Custom++
			return nil
		}
		root := filepath.Dir(folder)
		if abs && isBelow(target, root) {
			failf(wharf.RelocationInvalidTarget, "%s is inside the store %s", target, root)
		}
		required += uint64(pk.Size)
		dest := filepath.Join(target, string(pk.ID))
		d, ok := devs[root]
		if !ok {
			vi, err := e.facts.Stat(root)
			d = devAnswer{dev: vi.DevID, err: err}
			devs[root] = d
		}
		sameVolume := verr == nil && d.err == nil && d.dev == info.DevID
		if sameVolume {
			used += uint64(pk.Size)
		}
		switch {
		case folder == dest && pk.Link == "":
			p.AlreadyThere++
			return nil
		case req.Retry && pk.Link == "":
			p.Untouched++
			return nil
		}
		if pk.Link != "" {
			p.Relinks++
		}
		if pk.Link == "" && req.From != "" && !samePath(root, req.From) {
			p.Rotated++
		}
		if sameVolume {
			p.ByRename++
		} else {
			p.ByCopy++
			p.CopyBytes += pk.Size
			needed += uint64(pk.Size)
		}
		rel := string(pk.ID)
		if pk.LongestPath != "" {
			rel += "/" + pk.LongestPath
		}
		if n := e.limits.Len(rel); n > longestLen {
			longest, longestLen = rel, n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan relocation to %s: %w", req.Target, err)
	}
	p.RequiredMiB, p.UsedMiB = mibUp(required), mibUp(used)

	// 3: enough space.
	if verr == nil {
		p.ReserveBytes = req.Reserve.bytesOf(info.TotalBytes)
		p.NeededBytes = needed + p.ReserveBytes
		p.NeededMiB = mibUp(p.NeededBytes)
		if info.AvailBytes < p.NeededBytes {
			failf(wharf.RelocationInsufficientSpace, "%d MiB needed (%d MiB of packages + %d MiB reserve), %d MiB free on %s",
				p.NeededMiB, mibUp(needed), mibUp(p.ReserveBytes), p.FreeMiB, info.Root)
		} else {
			pass[wharf.RelocationInsufficientSpace] = fmt.Sprintf("%d MiB needed, %d MiB free", p.NeededMiB, p.FreeMiB)
		}
	}

	// 5: path length, on the longest path the move writes.
	if abs {
		checked := longest
		if p.ByCopy > 0 {
			checked = storeroot.RelocateDir + "/" + longest
		}
		p.LongestPath = e.limits.Join(target, longest)
		p.LongestPathLen = e.limits.Len(p.LongestPath)
		p.CheckedPath = e.limits.Join(target, checked)
		if err := e.limits.Check(target, checked); err != nil {
			failf(wharf.RelocationPathTooLong, "%v", err)
		} else {
			pass[wharf.RelocationPathTooLong] = fmt.Sprintf("longest path %d of %d %s", e.limits.Len(p.CheckedPath), p.PathLimit, p.PathUnit)
		}
	}

	for _, bit := range prerequisiteOrder {
		c := Check{Name: bit.String(), Bit: bit, OK: true, Detail: pass[bit]}
		if why, failed := fail[bit]; failed {
			c.OK, c.Detail = false, why
			p.Status |= bit
		} else if !abs {
			c.OK, c.Skipped, c.Detail = false, true, "not checked: the target is not an absolute path"
		} else if why, skipped := skip[bit]; skipped {
			c.OK, c.Skipped, c.Detail = false, true, why
		}
		p.Prerequisites = append(p.Prerequisites, c)
	}
	p.OK = p.Status == 0
	p.StatusFlags = p.Status.Names()
	rate := float64(e.opt.EstimateRate)
	if l := e.opt.Limiter; l != nil && float64(l.Limit()) < rate {
		rate = float64(l.Limit())
	}
	if rate > 0 {
		p.EstimateSeconds = float64(p.CopyBytes)/rate + float64(p.ByRename)*0.002
	}
	return p, nil
}

// prerequisiteOrder lists the prerequisites by bit, as a Plan reports them.
var prerequisiteOrder = []wharf.RelocationStatus{
	wharf.RelocationNotFixedMedia, wharf.RelocationUnsupportedFilesystem, wharf.RelocationInsufficientSpace,
	wharf.RelocationKnownFolder, wharf.RelocationPathTooLong, wharf.RelocationInvalidTarget,
}

type devAnswer struct {
	dev uint64
	err error
}

// checkTargetFolder checks what the target alone tells of SPEC §6.1.6:
// writable volume, not inside the current location, not a file, empty or a
// store of this PS, creatable and writable.
func (e *Engine) checkTargetFolder(target string, req Request, info volume.Info, verr error,
	failf func(wharf.RelocationStatus, string, ...any), pass, skip map[wharf.RelocationStatus]string) {
	bit := wharf.RelocationInvalidTarget
	if verr == nil && info.ReadOnly {
		failf(bit, "volume %s is read-only", info.Root)
	}
	if req.From != "" && isBelow(target, filepath.Clean(req.From)) {
		failf(bit, "%s is inside the current location %s", target, req.From)
	}
	fi, err := e.fs.Stat(target)
	switch {
	case err == nil && !fi.IsDir():
		failf(bit, "%s is a file, not a folder", target)
		return
	case err == nil:
		what, ok := e.targetContent(target)
		if !ok {
			failf(bit, "%s", what)
			return
		}
		if err := e.probe(target); err != nil {
			failf(bit, "%s is not writable: %v", target, err)
			return
		}
		pass[bit] = what
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		parent, err := e.nearestExisting(target)
		if err != nil {
			failf(bit, "%s cannot be created: %v", target, err)
			return
		}
		if err := e.probe(parent); err != nil {
			failf(bit, "%s cannot be created: %s is not writable: %v", target, parent, err)
			return
		}
		pass[bit] = fmt.Sprintf("%s will be created", target)
	case errors.Is(err, syscall.ENAMETOOLONG):
		// A name longer than the file system takes: the path-length
		// check refuses it, and nothing more can be told of the folder.
		skip[bit] = fmt.Sprintf("not checked: a name in %s is too long for the file system (see path length)", target)
	default:
		failf(bit, "%s: %v", target, err)
	}
}

// targetContent tells whether an existing folder may be a target: empty (a
// volume's own entries and Wharf's temporary files aside), or a store of
// this PS.
func (e *Engine) targetContent(target string) (string, bool) {
	entries, err := e.fs.ReadDir(target)
	if err != nil {
		return fmt.Sprintf("%s cannot be listed: %v", target, err), false
	}
	var foreign []string
	hasMarker := false
	for _, en := range entries {
		n := en.Name()
		switch {
		case n == storeroot.MarkerName:
			hasMarker = true
		case storeroot.IsOwn(n), containsFold(volumeEntries, n):
		default:
			foreign = append(foreign, n)
		}
	}
	if !hasMarker {
		if len(foreign) == 0 {
			return fmt.Sprintf("%s is empty", target), true
		}
		return fmt.Sprintf("%s is not empty and not a Wharf store: it holds %d entries Wharf did not create (%s)",
			target, len(foreign), listSome(foreign, 3)), false
	}
	m, err := e.roots.ReadMarker(target)
	switch {
	case err != nil:
		return fmt.Sprintf("%s: cannot read its store marker: %v", target, err), false
	case m.Server != e.opt.Server:
		return fmt.Sprintf("%s is the Wharf store of another Package Server (%q)", target, m.Server), false
	}
	return fmt.Sprintf("%s is a Wharf store of this server", target), true
}

// nearestExisting returns the nearest existing ancestor of path, which
// must be a folder.
func (e *Engine) nearestExisting(path string) (string, error) {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := e.fs.Stat(dir)
		switch {
		case err == nil && fi.IsDir():
			return dir, nil
		case err == nil:
			return "", fmt.Errorf("%s is a file", dir)
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return "", err
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no folder of %s exists", path)
		}
	}
}

// probe learns whether files can be created in dir by creating one and
// removing it.
func (e *Engine) probe(dir string) error {
	name := filepath.Join(dir, fmt.Sprintf("%s%d", storeroot.ProbePrefix, e.clock.Now().UnixNano()))
	f, err := e.fs.Create(name, 0o600)
	if err != nil {
		return err
	}
	cerr := f.Close()
	if err := e.fs.Remove(name); err != nil {
		return err
	}
	return cerr
}

// eachPackage calls fn for every package of the index, a page at a time.
func (e *Engine) eachPackage(ctx context.Context, fn func(Package) error) error {
	var after wharf.PackageID
	for {
		page, err := e.index.Packages(ctx, after, e.opt.PageSize)
		if err != nil {
			return fmt.Errorf("list packages: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, p := range page {
			if err := fn(p); err != nil {
				return err
			}
		}
		after = page[len(page)-1].ID
	}
}

// samePath compares two paths after cleaning, without regard to case on
// Windows.
func samePath(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// isBelow reports whether the clean path p lies strictly below the clean
// path dir (without regard to case on Windows).
func isBelow(p, dir string) bool {
	if runtime.GOOS == "windows" {
		p, dir = strings.ToLower(p), strings.ToLower(dir)
	}
	return strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + ", ..."
}
