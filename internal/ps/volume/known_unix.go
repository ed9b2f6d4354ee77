//go:build !windows

package volume

// knownFolders returns the Linux system folders of SPEC §6.1.4 (used on
// other Unix systems too, which Wharf does not support).
func knownFolders() knownSet {
	return knownSet{
		exact: []string{"/"},
		trees: []string{"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32",
			"/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr",
			"/var/lib", "/var/log"},
	}
}
