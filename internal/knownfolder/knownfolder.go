// Package knownfolder holds the rule of SPEC §6.1.4: the known system
// folders a package store may be neither in nor below, on Linux and on
// Windows, and how a path is matched against them. It does no I/O, so both
// sides use it: a Package Server (internal/ps/volume) first resolves a path
// on its own machine ("." and "..", symlinks, junctions) and asks the shell
// where its Windows known folders are; the Notification Server judges a
// storage location as an administrator writes it in a policy, before saving
// it, so a location every Package Server of that OS would refuse is refused
// at once (a link that leads into a system folder is still refused by the
// Package Server that resolves it).
package knownfolder

import "strings"

// Set lists the known folders of one OS: Exact matches only the folder
// itself; Trees match the folder and everything below it.
type Set struct {
	Exact, Trees []string
}

// Linux are the known folders of a Linux Package Server: "/" itself, and
// the system folders with everything below them.
var Linux = Set{
	Exact: []string{"/"},
	Trees: []string{"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32",
		"/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr",
		"/var/lib", "/var/log"},
}

// WindowsDefaults are the places of the Windows known folders
// FOLDERID_Windows, FOLDERID_ProgramFiles, FOLDERID_ProgramFilesX86,
// FOLDERID_ProgramData and FOLDERID_UserProfiles on a standard
// installation. A Package Server asks its own shell where they are
// (they may be moved); the Notification Server, which cannot, judges a
// policy's Windows location against these.
var WindowsDefaults = Set{
	Trees: []string{`C:\Windows`, `C:\Program Files`, `C:\Program Files (x86)`, `C:\ProgramData`, `C:\Users`},
}

// Match reports whether the absolute path p is one of the folders of s or,
// for Trees, lies below one, and which, as s lists it. It compares on path
// element boundaries ("/usrx" is not below "/usr") and ignores trailing
// separators. With windows set, `\` and `/` both separate, the comparison
// ignores case, and a `\\?\` prefix is ignored (`\\?\UNC\` reads as `\\`).
// p is taken as written: resolving "..", symlinks or relative paths is the
// caller's job.
func Match(p string, s Set, windows bool) (bool, string) {
	sep := "/"
	if windows {
		sep = `\`
	}
	norm := func(x string) string {
		if windows {
			x = strings.ReplaceAll(x, "/", `\`)
			if rest, ok := strings.CutPrefix(x, `\\?\UNC\`); ok {
				x = `\\` + rest
			} else {
				x = strings.TrimPrefix(x, `\\?\`)
			}
			x = strings.ToLower(x)
		}
		for len(x) > 1 && strings.HasSuffix(x, sep) && !(windows && len(x) == 3 && x[1] == ':') {
			x = x[:len(x)-1]
		}
		return x
	}
	np := norm(p)
	for _, d := range s.Exact {
		if np == norm(d) {
			return true, d
		}
	}
	for _, d := range s.Trees {
		nd := norm(d)
		if nd == "" {
			continue
		}
		if np == nd || strings.HasPrefix(np, strings.TrimSuffix(nd, sep)+sep) {
			return true, d
		}
	}
	return false, ""
}
