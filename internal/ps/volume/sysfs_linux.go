package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// tooDeep is the reason given for devices stacked deeper than maxDepth,
// passed up unwrapped so a cycle does not repeat itself in the message.
var tooDeep = fmt.Sprintf("devices stacked deeper than %d levels (a loop device backed by a file on itself?)", maxDepth)

// mountFixed decides whether mount m is on fixed media (SPEC §6.1.1) and, if
// not, why. depth counts the loop devices and image files followed so far.
func (o *OS) mountFixed(m *mountinfo.Info, depth int) (bool, string) {
	class, reason := classify(m.FSType)
	switch class {
	case classNetwork, classMemory, classPseudo, classUnion, classFUSEOther:
		return false, reason
	case classNoDevice:
		return true, ""
	case classFUSEImage:
		files := o.fuseImageFiles(m)
		if len(files) == 0 {
			return false, fmt.Sprintf("FUSE filesystem %s: its image file cannot be found", m.FSType)
		}
		return o.filesFixed(files, m.FSType+" filesystem", depth)
	case classFUSEBlock:
		major, minor, ok := sourceDevice(m.Source)
		if !ok {
			return false, fmt.Sprintf("FUSE filesystem %s: source %s is not a block device", m.FSType, m.Source)
		}
		return o.devnumFixed(major, minor, depth)
	}
	if m.Major != 0 {
		return o.devnumFixed(uint32(m.Major), uint32(m.Minor), depth)
	}
	// An anonymous device number (btrfs, bcachefs): the source names the
	// block device, if any.
	if major, minor, ok := sourceDevice(m.Source); ok {
		return o.devnumFixed(major, minor, depth)
	}
	return false, fmt.Sprintf("filesystem %s is not backed by a block device", m.FSType)
}

// sourceDevice returns the device number of a mount source that is a block
// device node (/dev/sda2, /dev/mapper/vg-lv).
func sourceDevice(source string) (major, minor uint32, ok bool) {
	if !strings.HasPrefix(source, "/dev/") {
		return 0, 0, false
	}
	var st unix.Stat_t
	if err := unix.Stat(source, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, false
	}
	return unix.Major(st.Rdev), unix.Minor(st.Rdev), true
}

// devnumFixed decides for the block device major:minor, named through
// /sys/dev/block/<major>:<minor>.
func (o *OS) devnumFixed(major, minor uint32, depth int) (bool, string) {
	link, err := os.Readlink(filepath.Join(o.sys, "dev", "block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return false, fmt.Sprintf("block device %d:%d not found in sysfs", major, minor)
	}
	return o.deviceFixed(filepath.Base(link), depth)
}

// deviceFixed decides for the block device with kernel name dev ("sda1",
// "dm-0", "loop3"), read from /sys/class/block/<dev>:
//   - a partition is judged by its disk;
//   - a loop device by the media holding its backing file;
//   - zram and ram disks are memory, nbd and rbd devices network;
//   - a device with slaves (device-mapper, md) is fixed only if every slave
//     is;
//   - any other device by its removable flag: fixed when it reads 0.
func (o *OS) deviceFixed(dev string, depth int) (bool, string) {
	if depth > maxDepth {
		return false, tooDeep
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(o.sys, "class", "block", dev))
	if err != nil {
		return false, fmt.Sprintf("block device %s not found in sysfs", dev)
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		dir = filepath.Dir(dir)
		dev = filepath.Base(dir)
	}
	switch {
	case strings.HasPrefix(dev, "loop"):
		b, err := os.ReadFile(filepath.Join(dir, "loop", "backing_file"))
		if err != nil {
			return false, fmt.Sprintf("loop device %s has no backing file", dev)
		}
		file := strings.TrimSuffix(string(b), "\n")
		if strings.HasSuffix(file, " (deleted)") {
			return false, fmt.Sprintf("loop device %s: backing file %s", dev, file)
		}
		return o.filesFixed([]string{file}, "loop device "+dev, depth)
	case strings.HasPrefix(dev, "zram"), strings.HasPrefix(dev, "ram"):
		return false, "memory block device " + dev
	case strings.HasPrefix(dev, "nbd"), strings.HasPrefix(dev, "rbd"):
		return false, "network block device " + dev
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	if len(slaves) > 0 {
		for _, s := range slaves {
			if ok, why := o.deviceFixed(s.Name(), depth+1); !ok {
				if why == tooDeep {
					return false, why
				}
				return false, fmt.Sprintf("%s on %s", why, dev)
			}
		}
		return true, ""
	}
	b, err := os.ReadFile(filepath.Join(dir, "removable"))
	if err != nil {
		return false, fmt.Sprintf("block device %s: removable flag unreadable", dev)
	}
	if strings.TrimSpace(string(b)) != "0" {
		return false, "removable device " + dev
	}
	return true, ""
}

// filesFixed decides for something backed by image files (a loop device, an
// image-backed FUSE filesystem, named by what): fixed when every file lies on
// fixed media.
func (o *OS) filesFixed(files []string, what string, depth int) (bool, string) {
	if depth >= maxDepth {
		return false, tooDeep
	}
	for _, f := range files {
		info, err := o.stat(f, depth+1)
		if err != nil {
			return false, fmt.Sprintf("%s: backing file %s: %v", what, f, err)
		}
		if info.FixedReason == tooDeep {
			return false, tooDeep
		}
		if !info.Fixed {
			return false, fmt.Sprintf("%s backed by %s: %s", what, f, info.FixedReason)
		}
	}
	return true, ""
}
