package volume

import (
	"fmt"
	"path/filepath"
	"unicode/utf16"

	"golang.org/x/sys/windows"
)

// OS reads volume facts from the running system: on Windows from the volume
// management functions of kernel32. Use [New].
type OS struct{}

// New returns the facts of the running system.
func New() *OS { return &OS{} }

var _ Facts = (*OS)(nil)

// Stat implements [Facts]. The volume root is GetVolumePathName of the
// nearest existing ancestor, so a volume mounted on a folder is found too.
func (o *OS) Stat(path string) (Info, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	dir, _, err := resolveExisting(resolvePath(path), 0)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	root, err := volumePathName(dir)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	info, err := describe(root, dir)
	if err != nil {
		return Info{}, fmt.Errorf("stat volume of %s: %w", path, err)
	}
	info.Path = abs
	return info, nil
}

// Volumes implements [Facts]: the drive letters of GetLogicalDriveStrings.
// A drive whose volume information cannot be read (no medium in it) is left
// out.
func (o *OS) Volumes() ([]Info, error) {
	n, err := windows.GetLogicalDriveStrings(0, nil)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	buf := make([]uint16, n+1)
	n, err = windows.GetLogicalDriveStrings(uint32(len(buf)), &buf[0])
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Info
	for _, drive := range splitMultiSZ(buf[:n]) {
		info, err := describe(drive, drive)
		if err != nil {
			continue
		}
		info.Path = info.Root
		out = append(out, info)
	}
	return out, nil
}

// splitMultiSZ splits a list of NUL-terminated UTF-16 strings.
func splitMultiSZ(buf []uint16) []string {
	var out []string
	start := 0
	for i, c := range buf {
		if c == 0 {
			if i > start {
				out = append(out, string(utf16.Decode(buf[start:i])))
			}
			start = i + 1
		}
	}
	return out
}

// volumePathName returns the root of the volume holding the existing path p,
// with a trailing backslash (`C:\`, `C:\mnt\data\`, `\\server\share\`).
func volumePathName(p string) (string, error) {
	p16, err := windows.UTF16FromString(p)
	if err != nil {
		return "", err
	}
	buf := make([]uint16, max(len(p16)+2, windows.MAX_PATH+1))
	if err := windows.GetVolumePathName(&p16[0], &buf[0], uint32(len(buf))); err != nil {
		return "", fmt.Errorf("GetVolumePathName %s: %w", p, err)
	}
	return windows.UTF16ToString(buf), nil
}

// describe describes the volume with root directory root (trailing
// backslash), measuring free space through path, an existing path on it
// (which may differ from the root's under per-user quotas).
func describe(root, path string) (Info, error) {
	root16, err := windows.UTF16PtrFromString(root)
	if err != nil {
		return Info{}, err
	}
	var serial, maxComponent, flags uint32
	fsName := make([]uint16, windows.MAX_PATH+1)
	if err := windows.GetVolumeInformation(root16, nil, 0, &serial, &maxComponent, &flags, &fsName[0], uint32(len(fsName))); err != nil {
		return Info{}, fmt.Errorf("GetVolumeInformation %s: %w", root, err)
	}
	path16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return Info{}, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(path16, &avail, &total, &free); err != nil {
		return Info{}, fmt.Errorf("GetDiskFreeSpaceEx %s: %w", path, err)
	}
	info := Info{
		Path:       path,
		Root:       root,
		Device:     volumeGUIDPath(root16, root),
		DevID:      uint64(serial),
		FSType:     windows.UTF16ToString(fsName),
		TotalBytes: total,
		AvailBytes: avail,
		ReadOnly:   flags&windows.FILE_READ_ONLY_VOLUME != 0,
		Excluded:   markerPresent(filepath.Join(root, NoWharfMarker)),
	}
	info.Fixed, info.FixedReason = driveFixed(windows.GetDriveType(root16))
	info.Supported, info.SupportedReason = SupportedFS("windows", info.FSType)
	return info, nil
}

// volumeGUIDPath returns the `\\?\Volume{GUID}\` name of the volume at root,
// or root itself when it has none (network shares, SUBST drives).
func volumeGUIDPath(root16 *uint16, root string) string {
	buf := make([]uint16, 64)
	if err := windows.GetVolumeNameForVolumeMountPoint(root16, &buf[0], uint32(len(buf))); err != nil {
		return root
	}
	return windows.UTF16ToString(buf)
}

// driveFixed turns a GetDriveType answer into the fixed-media verdict.
func driveFixed(t uint32) (bool, string) {
	switch t {
	case windows.DRIVE_FIXED:
		return true, ""
	case windows.DRIVE_REMOVABLE:
		return false, "removable drive"
	case windows.DRIVE_REMOTE:
		return false, "network drive"
	case windows.DRIVE_CDROM:
		return false, "CD/DVD drive"
	case windows.DRIVE_RAMDISK:
		return false, "RAM disk"
	case windows.DRIVE_NO_ROOT_DIR:
		return false, "no volume mounted at the root"
	}
	return false, "unknown drive type"
}
