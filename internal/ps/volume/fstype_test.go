package volume

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		fstype string
		want   fsClass
		reason string
	}{
		{"ext4", classBlock, ""},
		{"xfs", classBlock, ""},
		{"vfat", classBlock, ""},
		{"btrfs", classBlock, ""},
		{"zfs", classNoDevice, ""},
		{"nfs4", classNetwork, "network filesystem nfs4"},
		{"cifs", classNetwork, "network filesystem cifs"},
		{"smb3", classNetwork, "network filesystem smb3"},
		{"9p", classNetwork, "network filesystem 9p"},
		{"fuse.sshfs", classNetwork, "network filesystem fuse.sshfs"},
		{"tmpfs", classMemory, "memory filesystem tmpfs"},
		{"ramfs", classMemory, "memory filesystem ramfs"},
		{"devtmpfs", classMemory, "memory filesystem devtmpfs"},
		{"proc", classPseudo, "pseudo filesystem proc"},
		{"cgroup2", classPseudo, "pseudo filesystem cgroup2"},
		{"overlay", classUnion, "union filesystem overlay (not backed by one block device)"},
		{"fuse.fusefat", classFUSEImage, ""},
		{"fuseblk", classFUSEBlock, ""},
		{"fuse.mystery", classFUSEOther, "FUSE filesystem fuse.mystery (not backed by a block device or image file)"},
		{"fuse", classFUSEOther, "FUSE filesystem fuse (not backed by a block device or image file)"},
	}
	for _, tt := range tests {
		got, reason := classify(tt.fstype)
		if got != tt.want || reason != tt.reason {
			t.Errorf("classify(%q) = %d, %q; want %d, %q", tt.fstype, got, reason, tt.want, tt.reason)
		}
	}
}

func TestSupportedFS(t *testing.T) {
	tests := []struct {
		goos, fstype string
		want         bool
		reason       string
	}{
		{"linux", "ext2", true, ""},
		{"linux", "ext3", true, ""},
		{"linux", "ext4", true, ""},
		{"linux", "xfs", true, ""},
		{"linux", "btrfs", true, ""},
		{"linux", "zfs", true, ""},
		{"linux", "f2fs", true, ""},
		{"linux", "jfs", true, ""},
		{"linux", "nilfs2", true, ""},
		{"linux", "bcachefs", true, ""},
		{"linux", "vfat", false, "unsupported filesystem vfat"},
		{"linux", "msdos", false, "unsupported filesystem msdos"},
		{"linux", "exfat", false, "unsupported filesystem exfat"},
		{"linux", "fuse.fusefat", false, "unsupported filesystem fuse.fusefat"},
		{"linux", "tmpfs", false, "unsupported filesystem tmpfs"},
		{"linux", "EXT4", false, "unsupported filesystem EXT4"},
		{"linux", "NTFS", false, "unsupported filesystem NTFS"},
		{"linux", "", false, "unknown filesystem"},
		{"windows", "NTFS", true, ""},
		{"windows", "ReFS", true, ""},
		{"windows", "ntfs", true, ""},
		{"windows", "FAT32", false, "unsupported filesystem FAT32"},
		{"windows", "exFAT", false, "unsupported filesystem exFAT"},
		{"windows", "ext4", false, "unsupported filesystem ext4"},
		{"darwin", "apfs", false, "unsupported filesystem apfs"},
	}
	for _, tt := range tests {
		got, reason := SupportedFS(tt.goos, tt.fstype)
		if got != tt.want || reason != tt.reason {
			t.Errorf("SupportedFS(%q, %q) = %v, %q; want %v, %q", tt.goos, tt.fstype, got, reason, tt.want, tt.reason)
		}
	}
}
