package volume

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fuseImageFiles returns the image files behind the FUSE mount m: the mount
// source when it is an absolute path to a regular file (fsname=IMAGE), else
// the regular files the FUSE server process holds open. The server is the
// process with a /dev/fuse descriptor whose /proc/<pid>/fdinfo names the
// mount's connection ("fuse_connection: N", N being the mount's device
// number, on kernels that print it). It returns nil when the image cannot be
// found.
func (o *OS) fuseImageFiles(m *mountinfo.Info) []string {
	if filepath.IsAbs(m.Source) {
		if fi, err := os.Stat(m.Source); err == nil && fi.Mode().IsRegular() {
			return []string{m.Source}
		}
	}
	conn := strconv.FormatUint(unix.Mkdev(uint32(m.Major), uint32(m.Minor)), 10)
	pids, err := os.ReadDir(o.proc)
	if err != nil {
		return nil
	}
	for _, p := range pids {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		pdir := filepath.Join(o.proc, p.Name())
		if o.servesFUSE(pdir, conn) {
			return openFiles(pdir)
		}
	}
	return nil
}

// servesFUSE reports whether the process at pdir holds the /dev/fuse
// descriptor of connection conn.
func (o *OS) servesFUSE(pdir, conn string) bool {
	fds, err := os.ReadDir(filepath.Join(pdir, "fd"))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if t, err := os.Readlink(filepath.Join(pdir, "fd", fd.Name())); err != nil || t != "/dev/fuse" {
			continue
		}
		if fdinfoValue(filepath.Join(pdir, "fdinfo", fd.Name()), "fuse_connection") == conn {
			return true
		}
	}
	return false
}

// fdinfoValue returns the value of key in an fdinfo file, or "".
func fdinfoValue(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// openFiles returns the absolute paths of the regular files the process at
// pdir holds open, skipping device nodes, pipes, sockets and deleted files.
func openFiles(pdir string) []string {
	fds, err := os.ReadDir(filepath.Join(pdir, "fd"))
	if err != nil {
		return nil
	}
	var out []string
	for _, fd := range fds {
		link := filepath.Join(pdir, "fd", fd.Name())
		t, err := os.Readlink(link)
		if err != nil || !filepath.IsAbs(t) || strings.HasPrefix(t, "/dev/") || strings.HasSuffix(t, " (deleted)") {
			continue
		}
		if fi, err := os.Stat(link); err == nil && fi.Mode().IsRegular() {
			out = append(out, t)
		}
	}
	return out
}
