//go:build !windows

package volume

import "github.com/wharf-project/wharf/internal/knownfolder"

// knownFolders returns the Linux system folders of SPEC §6.1.4 (used on
// other Unix systems too, which Wharf does not support).
func knownFolders() knownfolder.Set { return knownfolder.Linux }
