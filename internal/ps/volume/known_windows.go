package volume

import (
	"os"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/knownfolder"
)

// knownFolders returns the Windows known folders of SPEC §6.1.4, asking the
// shell (SHGetKnownFolderPath) and falling back to the environment for a
// folder the shell cannot name.
func knownFolders() knownfolder.Set {
	ids := []struct {
		id       *windows.KNOWNFOLDERID
		fallback string
	}{
		{windows.FOLDERID_Windows, os.Getenv("SystemRoot")},
		{windows.FOLDERID_ProgramFiles, os.Getenv("ProgramFiles")},
		{windows.FOLDERID_ProgramFilesX86, os.Getenv("ProgramFiles(x86)")},
		{windows.FOLDERID_ProgramData, os.Getenv("ProgramData")},
		{windows.FOLDERID_UserProfiles, userProfilesFallback()},
	}
	var ks knownfolder.Set
	for _, f := range ids {
		p, err := windows.KnownFolderPath(f.id, windows.KF_FLAG_DEFAULT)
		if err != nil || p == "" {
			p = f.fallback
		}
		if p != "" {
			ks.Trees = append(ks.Trees, p)
		}
	}
	return ks
}

// userProfilesFallback is the parent of %PUBLIC% (C:\Users\Public), the
// users' profile folder.
func userProfilesFallback() string {
	if pub := os.Getenv("PUBLIC"); pub != "" {
		for i := len(pub) - 1; i > 0; i-- {
			if os.IsPathSeparator(pub[i]) {
				return pub[:i]
			}
		}
	}
	return ""
}
