package volume

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/wharf-project/wharf/internal/knownfolder"
)

// IsKnownFolder reports whether path is a known system folder or lies below
// one (SPEC §6.1.4), and which folder it is, as the OS names it ("/usr",
// `C:\Program Files`). The path is first made absolute and resolved: "." and
// ".." elements and symlinks (junctions on Windows) are followed, also for a
// path that does not exist yet, whose nearest existing ancestor is resolved
// and the rest appended. When resolution fails (permission denied) the
// lexically cleaned path is judged instead.
//
// Linux: "/" itself and /bin /boot /dev /etc /home /lib /lib32 /lib64
// /libx32 /proc /root /run /sbin /sys /usr /var/lib /var/log with everything
// below them. Windows: the FOLDERID_Windows, FOLDERID_ProgramFiles,
// FOLDERID_ProgramFilesX86, FOLDERID_ProgramData and FOLDERID_UserProfiles
// folders and everything below them, compared without regard to case. A
// known folder that is itself a symlink matches under its resolved name too.
//
// The Wharf default location (<install dir>/Package Delivery, which may lie
// under C:\Program Files) is always allowed: callers do not ask about it.
func IsKnownFolder(path string) (bool, string) {
	ks := knownFolders()
	ks.Trees = withResolved(ks.Trees)
	return knownfolder.Match(resolvePath(path), ks, runtime.GOOS == "windows")
}

// withResolved adds the resolved name of every folder that is a symlink
// (/home -> /var/home), so a target reached through the real name matches.
func withResolved(dirs []string) []string {
	out := append([]string(nil), dirs...)
	for _, d := range dirs {
		r, err := filepath.EvalSymlinks(d)
		if err != nil || r == d || filepath.Dir(r) == r { // never let a link to a root cover everything
			continue
		}
		out = append(out, r)
	}
	return out
}

// resolvePath makes p absolute and resolves it as the OS would when creating
// it; on failure it returns the lexically cleaned absolute path.
func resolvePath(p string) string {
	p = absNoClean(p)
	dir, rest, err := resolveExisting(p, 0)
	if err != nil {
		return filepath.Clean(p)
	}
	return filepath.Join(append([]string{dir}, rest...)...)
}

// absNoClean makes p absolute against the working directory without
// cleaning it: a ".." after a symlink must apply to the symlink's target.
func absNoClean(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		return wd + string(filepath.Separator) + p
	}
	return p
}

// maxLinks bounds how many dangling symlinks resolveExisting follows by hand,
// like the kernel's limit on symlinks in one lookup.
const maxLinks = 40

// resolveExisting splits the absolute path p into dir, its longest prefix
// that exists, resolved by filepath.EvalSymlinks (which follows a symlink
// before applying a ".." after it), and rest, the elements after it. The
// rest names nothing that exists, so it holds no symlinks and the caller may
// join it lexically. A dangling symlink is followed by hand, so a link to a
// folder not created yet counts as its target. The error is one other than
// "does not exist" (or "name too long") from resolving.
func resolveExisting(p string, links int) (dir string, rest []string, err error) {
	vol := filepath.VolumeName(p)
	sep := string(filepath.Separator)
	elems := strings.FieldsFunc(p[len(vol):], func(r rune) bool { return r == '/' || r == filepath.Separator })
	for k := len(elems); k >= 0; k-- {
		prefix := vol + sep + strings.Join(elems[:k], sep)
		r, err := filepath.EvalSymlinks(prefix)
		if err == nil {
			return r, elems[k:], nil
		}
		// A name too long for the file system cannot exist either: the
		// path is judged by what of it exists (its length is the
		// path-length check's to refuse, not this one's).
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ENAMETOOLONG) {
			return "", nil, err
		}
		if k == 0 || links >= maxLinks {
			continue
		}
		fi, err := os.Lstat(prefix)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(prefix)
		if err != nil {
			continue
		}
		if !filepath.IsAbs(target) {
			target = vol + sep + strings.Join(append(elems[:k-1:k-1], target), sep)
		}
		return resolveExisting(strings.Join(append([]string{target}, elems[k:]...), sep), links+1)
	}
	return "", nil, &fs.PathError{Op: "resolve", Path: p, Err: fs.ErrNotExist}
}
