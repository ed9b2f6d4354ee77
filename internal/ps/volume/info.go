package volume

// NoWharfMarker is the name of the file an administrator puts at the root of
// a volume to keep Wharf from rotating packages onto it (SPEC §4). Its
// content and type do not matter, only its presence.
const NoWharfMarker = "NO_WHARF_ON_DRIVE"

// Info is what the Package Server knows about the volume holding a path.
// The zero value describes nothing; an Info comes from a [Facts].
type Info struct {
	// Path is the path asked about, absolute and cleaned; for an entry of
	// Volumes it equals Root.
	Path string
	// Root is the mount point (Linux) or volume root such as `D:\` (Windows)
	// of the volume holding Path.
	Root string
	// FSRoot is, on Linux, the folder of the filesystem that is mounted at
	// Root: "/" for an ordinary mount, the sub-folder for a bind mount of
	// one. It is empty on Windows.
	FSRoot string
	// Device is the mount source (`/dev/sda1`, `/dev/loop3`, `server:/export`,
	// `tmpfs`) on Linux, the volume GUID path (`\\?\Volume{...}\`) on
	// Windows.
	Device string
	// DevID identifies the volume: two paths with the same DevID are on the
	// same filesystem (st_dev on Linux, the volume serial number on
	// Windows). A rename between paths with different DevIDs cannot work; an
	// equal DevID does not promise one will (bind mounts), so callers still
	// try the rename and fall back on EXDEV.
	DevID uint64
	// FSType is the filesystem type as the OS names it: "ext4", "xfs",
	// "fuse.fusefat", "tmpfs" on Linux; "NTFS", "ReFS", "FAT32" on Windows.
	FSType string
	// TotalBytes is the size of the filesystem.
	TotalBytes uint64
	// AvailBytes is the space an unprivileged writer may still use (statfs
	// f_bavail on Linux; the caller-available bytes of GetDiskFreeSpaceEx on
	// Windows). Budget with this, never with the raw free count.
	AvailBytes uint64
	// ReadOnly reports a read-only mount or volume.
	ReadOnly bool
	// Fixed reports fixed media (SPEC §6.1.1). FixedReason says why not when
	// Fixed is false ("removable device sdb", "network filesystem nfs4",
	// "memory filesystem tmpfs"); it is empty when Fixed is true.
	Fixed       bool
	FixedReason string
	// Supported reports a filesystem that supports the links Wharf uses as
	// fallback (SPEC §6.1.2). SupportedReason says why not when Supported
	// is false; it is empty when Supported is true.
	Supported       bool
	SupportedReason string
	// Excluded reports a [NoWharfMarker] file at Root: the administrator
	// excluded the volume from rotation.
	Excluded bool
}

// Facts answers questions about volumes. Implementations: [OS] for the
// running system, volumetest.Fake for tests. Methods are safe for
// concurrent use and read the current state of the system on every call;
// nothing is cached.
type Facts interface {
	// Stat describes the volume holding path. The path need not exist: the
	// volume is the one that would hold it, found through its nearest
	// existing ancestor (after following symlinks). A relative path is made
	// absolute against the working directory. The error names the path.
	Stat(path string) (Info, error)
	// Volumes lists the mounted volumes (Linux: every mount except pseudo
	// filesystems such as proc, sysfs and cgroup, in mount order, bind
	// mounts included; Windows: the drive letters, in letter order). Each
	// entry has Path == Root. A volume whose facts cannot be read (a stale
	// mount, a drive with no medium) is left out rather than failing the
	// list.
	Volumes() ([]Info, error)
}
