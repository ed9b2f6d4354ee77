// Package volume answers what a Package Server needs to know about the
// volumes it keeps packages on: which volume holds a path, its filesystem,
// size and free space, whether it is fixed media (SPEC §6.1.1), whether its
// filesystem is supported (§6.1.2), whether a path is a known system folder
// (§6.1.4) and whether a store path fits the OS path-length limits (§6.1.5).
// It also picks the volumes eligible for "allow usage of all fixed drives"
// (§4).
//
// # The seam
//
// [Facts] is the one interface: Stat for a path, Volumes for all mounted
// volumes. [New] returns the implementation for the running OS ([OS]);
// package volumetest holds an in-memory fake that tests elsewhere use to
// describe any set of volumes. The pure parts — filesystem classification,
// eligibility, known-folder matching, path limits — take the OS or the facts
// as parameters, so the Windows rules are unit-tested on Linux too.
//
// # Linux
//
// The volume of a path is the mount in /proc/self/mountinfo whose mount point
// is the longest prefix of the path after symlinks are resolved. A volume is
// fixed when its filesystem is backed by a block device whose
// /sys/class/block/<dev>/removable flag is 0. Partitions are followed to
// their disk, device-mapper and md devices to every device in their slaves/
// folder (fixed only if all are), and loop devices to their backing file
// (/sys/class/block/loopN/loop/backing_file): a loop device is fixed when
// the filesystem holding its backing file is. FUSE filesystems served from an
// image file (fuse.fusefat, fuse.fuse2fs, ...) are treated like loop devices;
// their image is the mount source when that is an absolute file path, else
// the regular files held open by the FUSE server process (found through the
// "fuse_connection" line of its /dev/fuse descriptor in /proc/<pid>/fdinfo).
// Network filesystems (nfs, cifs, sshfs, ...), memory filesystems (tmpfs,
// ramfs, zram disks, ...), union filesystems (overlay, ...) and other FUSE
// filesystems are never fixed. ZFS datasets have no single block device and
// are taken as fixed. Pseudo filesystems (proc, sysfs, cgroup, ...) are not
// listed by Volumes at all.
//
// # Windows
//
// The volume of a path is GetVolumePathName's root; fixed means GetDriveType
// is DRIVE_FIXED; the filesystem name, serial number and read-only flag come
// from GetVolumeInformation, sizes from GetDiskFreeSpaceEx. Volumes lists the
// drive letters (GetLogicalDriveStrings); volumes mounted only on folders
// are found by Stat but not listed.
package volume
