package volume

import "strings"

// fsClass sorts Linux filesystem types by what backs them, which decides
// whether they can be fixed media.
type fsClass int

const (
	// classBlock: a filesystem on a block device; fixed if the device is.
	classBlock fsClass = iota
	// classNetwork: served over the network or from a hypervisor host.
	classNetwork
	// classMemory: lives in RAM.
	classMemory
	// classPseudo: kernel interfaces (proc, sysfs, ...), not storage at all.
	classPseudo
	// classUnion: stacked over other filesystems (overlay, ...); not one
	// block device, so never fixed.
	classUnion
	// classFUSEImage: FUSE serving a filesystem image file; fixed if the
	// image is on fixed media, as for a loop device.
	classFUSEImage
	// classFUSEBlock: FUSE serving a block device named by the mount source
	// (fuseblk: ntfs-3g, exfat-fuse); fixed if the device is.
	classFUSEBlock
	// classFUSEOther: any other FUSE filesystem; its backing is unknown, so
	// not fixed.
	classFUSEOther
	// classNoDevice: a filesystem without a single block device that is
	// still taken as fixed (zfs: a pool of disks).
	classNoDevice
)

// Filesystem types by class. Names are the mountinfo "type[.subtype]" field.
var (
	networkFS = set("nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "9p",
		"ceph", "glusterfs", "afs", "coda", "lustre", "beegfs", "gpfs",
		"virtiofs", "vboxsf", "vmhgfs", "davfs", "orangefs", "pvfs2",
		"fuse.sshfs", "fuse.glusterfs", "fuse.ceph-fuse", "fuse.cephfs",
		"fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.davfs2",
		"fuse.curlftpfs", "fuse.juicefs", "fuse.goofys", "fuse.blobfuse",
		"fuse.blobfuse2", "fuse.smbnetfs", "fuse.vmhgfs-fuse", "fuse.lxcfs",
		"fuse.moosefs", "fuse.mfs", "fuse.seaweedfs", "fuse.gvfsd-fuse")
	memoryFS = set("tmpfs", "ramfs", "devtmpfs", "rootfs")
	pseudoFS = set("proc", "sysfs", "cgroup", "cgroup2", "devpts",
		"securityfs", "debugfs", "tracefs", "mqueue", "hugetlbfs", "pstore",
		"bpf", "configfs", "fusectl", "binfmt_misc", "autofs", "efivarfs",
		"nsfs", "rpc_pipefs", "selinuxfs", "nfsd", "sockfs", "pipefs",
		"anon_inodefs", "devfs", "usbfs", "xenfs",
		"fuse.portal", "fuse.xdg-document-portal")
	unionFS      = set("overlay", "overlayfs", "aufs", "unionfs", "fuse.mergerfs", "fuse.unionfs", "fuse.unionfs-fuse", "fuse-overlayfs", "fuse.fuse-overlayfs")
	fuseImageFS  = set("fuse.fusefat", "fuse.fuse2fs", "fuse.fuseiso", "fuse.squashfuse", "fuse.archivemount", "fuse.fuse-zip")
	noDeviceFS   = set("zfs")
	linuxSupport = set("ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "nilfs2", "bcachefs")
	winSupport   = set("ntfs", "refs")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// classify returns the class of a Linux filesystem type and, for the classes
// that are never fixed, the reason to report.
func classify(fstype string) (fsClass, string) {
	switch {
	case networkFS[fstype]:
		return classNetwork, "network filesystem " + fstype
	case memoryFS[fstype]:
		return classMemory, "memory filesystem " + fstype
	case pseudoFS[fstype]:
		return classPseudo, "pseudo filesystem " + fstype
	case unionFS[fstype]:
		return classUnion, "union filesystem " + fstype + " (not backed by one block device)"
	case fuseImageFS[fstype]:
		return classFUSEImage, ""
	case fstype == "fuseblk":
		return classFUSEBlock, ""
	case fstype == "fuse" || strings.HasPrefix(fstype, "fuse."):
		return classFUSEOther, "FUSE filesystem " + fstype + " (not backed by a block device or image file)"
	case noDeviceFS[fstype]:
		return classNoDevice, ""
	}
	return classBlock, ""
}

// SupportedFS reports whether a filesystem of type fstype on OS goos
// ("linux", "windows", as runtime.GOOS) supports the links Wharf uses as
// fallback (SPEC §6.1.2): on Linux ext2/3/4, xfs, btrfs, zfs, f2fs, jfs,
// nilfs2 and bcachefs; on Windows NTFS and ReFS, compared without regard to
// case. Any other type, and any other OS, is refused with a reason naming
// the type.
func SupportedFS(goos, fstype string) (bool, string) {
	ok := false
	switch goos {
	case "linux":
		ok = linuxSupport[fstype]
	case "windows":
		ok = winSupport[strings.ToLower(fstype)]
	}
	if ok {
		return true, ""
	}
	if fstype == "" {
		return false, "unknown filesystem"
	}
	return false, "unsupported filesystem " + fstype
}
