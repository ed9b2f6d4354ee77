package volume

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// OS reads volume facts from the running system: on Linux from
// /proc/self/mountinfo, statfs(2) and /sys. Use [New]; the zero value is not
// usable.
type OS struct {
	proc string // procfs root: "/proc"; a fake tree in tests
	sys  string // sysfs root: "/sys"; a fake tree in tests
}

// New returns the facts of the running system.
func New() *OS { return &OS{proc: "/proc", sys: "/sys"} }

var _ Facts = (*OS)(nil)

// maxDepth bounds how many loop devices or image-backed FUSE filesystems
// stacked on each other are followed to find the media at the bottom.
const maxDepth = 8

// Stat implements [Facts].
func (o *OS) Stat(path string) (Info, error) { return o.stat(path, 0) }

func (o *OS) stat(path string, depth int) (Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	dir, _, err := resolveExisting(resolvePath(path), 0)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	mounts, err := o.mounts()
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	m := mountOf(mounts, dir)
	if m == nil {
		return Info{}, fmt.Errorf("stat volume of %s: no mount holds %s", path, dir)
	}
	info, err := o.describe(m, dir, depth)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	info.Path = abs
	return info, nil
}

// Volumes implements [Facts]. Network filesystems are listed without
// calling statfs on them, which could hang on an unreachable server: their
// sizes are 0 and their DevID comes from the mount table.
func (o *OS) Volumes() ([]Info, error) {
	mounts, err := o.mounts()
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Info
	for _, m := range visible(mounts) {
		class, _ := classify(m.FSType)
		switch class {
		case classPseudo:
			continue
		case classNetwork:
			out = append(out, o.fromTable(m, 0))
			continue
		}
		info, err := o.describe(m, m.Mountpoint, 0)
		if err != nil {
			continue // a stale or inaccessible mount: see Facts.Volumes
		}
		info.Path = info.Root
		out = append(out, info)
	}
	return out, nil
}

// mounts reads the mount table.
func (o *OS) mounts() ([]*mountinfo.Info, error) {
	f, err := os.Open(filepath.Join(o.proc, "self", "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mountinfo.GetMountsFromReader(f, nil)
}

// fromTable describes m from the mount table alone, without touching the
// filesystem.
func (o *OS) fromTable(m *mountinfo.Info, depth int) Info {
	info := Info{
		Path:     m.Mountpoint,
		Root:     m.Mountpoint,
		FSRoot:   m.Root,
		Device:   m.Source,
		DevID:    unix.Mkdev(uint32(m.Major), uint32(m.Minor)),
		FSType:   m.FSType,
		ReadOnly: hasOpt(m.Options, "ro") || hasOpt(m.VFSOptions, "ro"),
	}
	info.Fixed, info.FixedReason = o.mountFixed(m, depth)
	info.Supported, info.SupportedReason = SupportedFS("linux", m.FSType)
	return info
}

// describe describes the volume of mount m, reading its sizes and device id
// through path, an existing path on it.
func (o *OS) describe(m *mountinfo.Info, path string, depth int) (Info, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Info{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return Info{}, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	info := o.fromTable(m, depth)
	info.DevID = st.Dev
	bs := uint64(sfs.Frsize)
	if bs == 0 {
		bs = uint64(sfs.Bsize)
	}
	info.TotalBytes = sfs.Blocks * bs
	info.AvailBytes = sfs.Bavail * bs
	info.ReadOnly = info.ReadOnly || sfs.Flags&unix.ST_RDONLY != 0
	info.Excluded = markerPresent(filepath.Join(m.Mountpoint, NoWharfMarker))
	return info, nil
}

// hasOpt reports whether the comma-separated option list has opt.
func hasOpt(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
