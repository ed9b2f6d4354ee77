// Package memfs is an in-memory fsys.FS with a durability model, for unit
// tests of code that must survive a crash at any instant.
//
// # Durability model
//
// Every change to a folder's entries (a file, folder or link created, a
// name removed, a rename, an exchange) is an operation in a log. An
// operation becomes durable once every folder it changed has been synced
// (SyncDir) after it: a rename or exchange between two folders needs both,
// and is then durable as a whole — never half, so a crash cannot leave a
// node under both names or under neither. A file's content becomes durable
// when the file is synced (File.Sync); the bytes written after that are not.
//
// [FS.Crash] replaces the live state by the last durable one: the durable
// operations are replayed, in order, on the state of the last crash (or
// the start), an operation that no longer applies being skipped; what is
// not reachable from a root is gone; every file holds the bytes of its last
// Sync (none if it never was). This is stricter than ext4 or XFS, which
// commit more than they must: a protocol that survives memfs survives them.
// Open handles die with the crash.
//
// # Knobs
//
// [FS.AddVolume] mounts a volume at a folder, with its own device (a rename
// or exchange between volumes fails with fsys.ErrCrossDevice), optional
// capacity (writes beyond it fail with ENOSPC after writing what fits) and
// read-only flag (EROFS). [FS.SetImmutable] marks a file or folder
// immutable, as chattr +i does: it cannot be written, renamed or removed,
// nor can entries be added to or removed from an immutable folder, and
// CanRemove reports it. [FS.WriteFile] and [FS.MkdirAll] seed content
// durably.
//
// Paths are absolute OS paths; symlinks are followed as the OS would
// (absolute or relative targets, at most 40 in one lookup).
package memfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// FS is an in-memory file system. The zero value is not usable; call New.
// Methods are safe for concurrent use.
type FS struct {
	mu    sync.Mutex
	roots map[string]*node // by volume name: "" on Unix
	vols  []*volume        // mounted volumes, in mount order
	gen   int              // bumped by Crash: older handles are dead
	clock int64            // logical clock for modification times

	seq   uint64                     // last operation or sync number
	log   []op                       // operations not yet folded into base
	base  map[*node]map[string]*node // durable entries of each folder as of log[0]
	root0 *volume                    // the volume of everything not mounted elsewhere
}

var _ fsys.FS = (*FS)(nil)

type kind int

const (
	kFile kind = iota
	kDir
	kLink
)

type node struct {
	kind      kind
	perm      fs.FileMode
	mtime     int64
	data      []byte           // file: live content
	synced    []byte           // file: content as of the last Sync; nil: never synced
	target    string           // link target
	children  map[string]*node // folder: live entries
	vol       *volume
	immutable bool
	lastSync  uint64 // folder: seq of its last SyncDir
}

type volume struct {
	root     string
	dev      uint64
	capacity int64
	used     int64
	readOnly bool
}

// Volume describes a volume for AddVolume.
type Volume struct {
	// Dev is the device id; 0 picks a new one. Two volumes with the same
	// Dev still refuse renames between them (like two bind mounts).
	Dev uint64
	// Capacity bounds the bytes of file content the volume holds; 0 is
	// unlimited.
	Capacity int64
	// ReadOnly makes every change on the volume fail with EROFS.
	ReadOnly bool
}

type opKind int

const (
	opAdd opKind = iota
	opDel
	opRename
	opExchange
)

// op is one change of folder entries. For opAdd and opDel, d1/n1 name the
// entry and nd the node; for opRename, nd moves from d1/n1 to d2/n2; for
// opExchange, nd (at d1/n1) and nd2 (at d2/n2) swap.
type op struct {
	seq     uint64
	kind    opKind
	d1, d2  *node
	n1, n2  string
	nd, nd2 *node
}

// New returns an empty file system: one root folder on a volume of device
// 1 with no capacity limit.
func New() *FS {
	m := &FS{roots: map[string]*node{}, base: map[*node]map[string]*node{}}
	m.root0 = &volume{root: string(filepath.Separator), dev: 1}
	m.vols = []*volume{m.root0}
	return m
}

func (m *FS) rootOf(vol string) *node {
	r := m.roots[vol]
	if r == nil {
		r = &node{kind: kDir, perm: 0o755, children: map[string]*node{}, vol: m.root0}
		m.roots[vol] = r
		m.base[r] = map[string]*node{}
	}
	return r
}

// AddVolume mounts a new volume at root, creating the folder (durably) if
// it does not exist; files and folders created below it belong to it. An
// existing root must be an empty folder.
func (m *FS) AddVolume(root string, v Volume) error {
	root = filepath.Clean(root)
	if err := m.MkdirAll(root); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("mount", root, true)
	if err != nil {
		return err
	}
	if len(r.n.children) != 0 {
		return &fs.PathError{Op: "mount", Path: root, Err: errno(syscall.ENOTEMPTY)}
	}
	dev := v.Dev
	if dev == 0 {
		dev = uint64(len(m.vols) + 1)
	}
	vol := &volume{root: root, dev: dev, capacity: v.Capacity, readOnly: v.ReadOnly}
	m.vols = append(m.vols, vol)
	r.n.vol = vol
	return nil
}

// SetReadOnly changes the read-only flag of the volume mounted at root.
func (m *FS) SetReadOnly(root string, ro bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.vols {
		if v.root == filepath.Clean(root) {
			v.readOnly = ro
			return nil
		}
	}
	return &fs.PathError{Op: "set read-only", Path: root, Err: errno(syscall.EINVAL)}
}

// Volume implements fsys.VolumeSyncer: the mount point of the volume
// holding path (which must exist); SyncVolume syncs that volume.
func (m *FS) Volume(path string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("volume", path, true)
	if err != nil {
		return "", err
	}
	if r.n == nil {
		return "", &fs.PathError{Op: "volume", Path: path, Err: errno(syscall.ENOENT)}
	}
	return r.n.vol.root, nil
}

// Dev returns the device id of the volume holding path (which must exist).
func (m *FS) Dev(path string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("dev", path, true)
	if err != nil {
		return 0, err
	}
	return r.n.vol.dev, nil
}

// Usage returns the capacity (0: unlimited) and the bytes of file content
// of the volume holding path (which must exist).
func (m *FS) Usage(path string) (capacity, used int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("usage", path, true)
	if err != nil {
		return 0, 0, err
	}
	return r.n.vol.capacity, r.n.vol.used, nil
}

// SetImmutable sets or clears the immutable attribute of path (not
// following a final link), effective at once and surviving crashes.
func (m *FS) SetImmutable(path string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("chattr", path, false)
	if err != nil {
		return err
	}
	if r.n == nil {
		return &fs.PathError{Op: "chattr", Path: path, Err: errno(syscall.ENOENT)}
	}
	r.n.immutable = on
	return nil
}

// MkdirAll creates path and its missing parents and syncs every folder it
// changed: a seeding helper whose result survives Crash.
func (m *FS) MkdirAll(path string) error {
	path = filepath.Clean(path)
	vol := filepath.VolumeName(path)
	elems := splitPath(path[len(vol):])
	cur := vol + string(filepath.Separator)
	for _, e := range elems {
		next := filepath.Join(cur, e)
		fi, err := m.Stat(next)
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			return &fs.PathError{Op: "mkdir", Path: next, Err: errno(syscall.ENOTDIR)}
		default:
			if err := m.Mkdir(next, 0o755); err != nil {
				return err
			}
			if err := m.SyncDir(cur); err != nil {
				return err
			}
		}
		cur = next
	}
	return nil
}

// WriteFile creates path (and its parents) with data, syncs it and every
// folder it changed: a seeding helper whose result survives Crash.
func (m *FS) WriteFile(path string, data []byte) error {
	if err := m.MkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := m.Create(path, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return m.SyncDir(filepath.Dir(path))
}

// ReadFile returns the content of path, following links.
func (m *FS) ReadFile(path string) ([]byte, error) {
	f, err := m.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Pending returns the number of folder changes that are not durable yet.
func (m *FS) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, o := range m.log {
		if !m.durable(o) {
			n++
		}
	}
	return n
}

// Crash drops everything that is not durable: see the package doc.
func (m *FS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	state := make(map[*node]map[string]*node, len(m.base))
	for d, es := range m.base {
		state[d] = maps(es)
	}
	for _, o := range m.log {
		if m.durable(o) {
			apply(state, o)
		}
	}
	m.log = nil
	m.base = map[*node]map[string]*node{}
	for _, v := range m.vols {
		v.used = 0
	}
	var rebuild func(d *node)
	rebuild = func(d *node) {
		d.lastSync = 0
		d.children = maps(state[d])
		m.base[d] = maps(state[d])
		for _, c := range d.children {
			switch c.kind {
			case kDir:
				rebuild(c)
			case kFile:
				c.data = bytes.Clone(c.synced)
				c.vol.used += int64(len(c.data))
			}
		}
	}
	for _, r := range m.roots {
		rebuild(r)
	}
	m.gen++
}

func maps(es map[string]*node) map[string]*node {
	out := make(map[string]*node, len(es))
	for k, v := range es {
		out[k] = v
	}
	return out
}

// durable reports whether every folder o changed was synced after it.
func (m *FS) durable(o op) bool {
	if o.d1.lastSync <= o.seq {
		return false
	}
	return o.d2 == nil || o.d2.lastSync > o.seq
}

// apply replays o on state, skipping it when it no longer applies.
func apply(state map[*node]map[string]*node, o op) {
	es := func(d *node) map[string]*node {
		m := state[d]
		if m == nil {
			m = map[string]*node{}
			state[d] = m
		}
		return m
	}
	e1 := es(o.d1)
	switch o.kind {
	case opAdd:
		if e1[o.n1] == nil {
			e1[o.n1] = o.nd
		}
	case opDel:
		if e1[o.n1] == o.nd {
			delete(e1, o.n1)
		}
	case opRename:
		e2 := es(o.d2)
		if e1[o.n1] == o.nd && e2[o.n2] == nil {
			delete(e1, o.n1)
			e2[o.n2] = o.nd
		}
	case opExchange:
		e2 := es(o.d2)
		if e1[o.n1] == o.nd && e2[o.n2] == o.nd2 {
			e1[o.n1], e2[o.n2] = o.nd2, o.nd
		}
	}
}

// record logs a change (already made to the live tree).
func (m *FS) record(o op) {
	m.seq++
	o.seq = m.seq
	m.log = append(m.log, o)
}

// fold moves the durable prefix of the log into base.
func (m *FS) fold() {
	i := 0
	for i < len(m.log) && m.durable(m.log[i]) {
		apply(m.base, m.log[i])
		i++
	}
	m.log = slices.Delete(m.log, 0, i)
}

func (m *FS) tick() int64 {
	m.clock++
	return m.clock
}

// errno returns e marked with the io/fs kind it stands for, so errors.Is
// works on every OS (syscall.ENOENT is not fs.ErrNotExist on Windows).
func errno(e syscall.Errno) error {
	switch e {
	case syscall.ENOENT:
		return fsys.WithKind(fs.ErrNotExist, e)
	case syscall.EEXIST, syscall.ENOTEMPTY:
		return fsys.WithKind(fs.ErrExist, e)
	case syscall.EPERM, syscall.EACCES:
		return fsys.WithKind(fs.ErrPermission, e)
	case syscall.EXDEV:
		return fsys.WithKind(fsys.ErrCrossDevice, e)
	}
	return e
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator })
}

// resolved is where a path leads: the folder holding its last element
// (nil for a root), that element, and the node there (nil if none).
type resolved struct {
	parent *node
	name   string
	n      *node
	path   string // the path after following links
}

// resolve walks name, following links in every element but the last, and
// in the last too when follow is set. The last element may be missing
// (r.n == nil); a missing folder before it is ENOENT.
func (m *FS) resolve(op, name string, follow bool) (resolved, error) {
	if !filepath.IsAbs(name) {
		return resolved{}, &fs.PathError{Op: op, Path: name, Err: errno(syscall.EINVAL)}
	}
	p := filepath.Clean(name)
	for hops := 0; hops <= 40; hops++ {
		vol := filepath.VolumeName(p)
		elems := splitPath(p[len(vol):])
		cur := m.rootOf(vol)
		if len(elems) == 0 {
			return resolved{n: cur, path: p}, nil
		}
		curPath := vol + string(filepath.Separator)
		restarted := false
		for i, e := range elems {
			if cur.kind != kDir {
				return resolved{}, &fs.PathError{Op: op, Path: name, Err: errno(syscall.ENOTDIR)}
			}
			child := cur.children[e]
			last := i == len(elems)-1
			if child != nil && child.kind == kLink && (!last || follow) {
				t := child.target
				if !filepath.IsAbs(t) {
					t = filepath.Join(curPath, t)
				}
				p = filepath.Clean(filepath.Join(append([]string{t}, elems[i+1:]...)...))
				restarted = true
				break
			}
			if last {
				return resolved{parent: cur, name: e, n: child, path: filepath.Join(curPath, e)}, nil
			}
			if child == nil {
				return resolved{}, &fs.PathError{Op: op, Path: name, Err: errno(syscall.ENOENT)}
			}
			cur, curPath = child, filepath.Join(curPath, e)
		}
		if !restarted {
			break
		}
	}
	return resolved{}, &fs.PathError{Op: op, Path: name, Err: errno(syscall.ELOOP)}
}

// lookup is resolve that requires the node to exist.
func (m *FS) lookup(op, name string, follow bool) (resolved, error) {
	r, err := m.resolve(op, name, follow)
	if err == nil && r.n == nil {
		err = &fs.PathError{Op: op, Path: name, Err: errno(syscall.ENOENT)}
	}
	return r, err
}

// changeable checks that entries of folder d may be added or removed.
func changeable(op, name string, d *node) error {
	switch {
	case d == nil:
		return &fs.PathError{Op: op, Path: name, Err: errno(syscall.EBUSY)}
	case d.kind != kDir:
		return &fs.PathError{Op: op, Path: name, Err: errno(syscall.ENOTDIR)}
	case d.vol.readOnly:
		return &fs.PathError{Op: op, Path: name, Err: errno(syscall.EROFS)}
	case d.immutable:
		return &fs.PathError{Op: op, Path: name, Err: errno(syscall.EPERM)}
	}
	return nil
}

func (m *FS) newNode(k kind, perm fs.FileMode, parent *node) *node {
	n := &node{kind: k, perm: perm.Perm(), mtime: m.tick(), vol: parent.vol}
	if k == kDir {
		n.children = map[string]*node{}
	}
	return n
}

// Open implements fsys.FS.
func (m *FS) Open(name string) (fsys.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	return &file{m: m, n: r.n, name: name, gen: m.gen}, nil
}

// Create implements fsys.FS.
func (m *FS) Create(name string, perm fs.FileMode) (fsys.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("open", name, false)
	if err != nil {
		return nil, err
	}
	if r.n != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errno(syscall.EEXIST)}
	}
	if err := changeable("open", name, r.parent); err != nil {
		return nil, err
	}
	n := m.newNode(kFile, perm, r.parent)
	r.parent.children[r.name] = n
	r.parent.mtime = m.tick()
	m.record(op{kind: opAdd, d1: r.parent, n1: r.name, nd: n})
	return &file{m: m, n: n, name: name, gen: m.gen, write: true}, nil
}

// Append implements fsys.FS: an existing file is opened for reading and
// appending, a missing one created as Create does.
func (m *FS) Append(name string, perm fs.FileMode) (fsys.File, error) {
	m.mu.Lock()
	r, err := m.resolve("open", name, true)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	if r.n != nil {
		defer m.mu.Unlock()
		if r.n.kind == kDir {
			return nil, &fs.PathError{Op: "open", Path: name, Err: errno(syscall.EISDIR)}
		}
		return &file{m: m, n: r.n, name: name, gen: m.gen, write: true, read: true, appends: true}, nil
	}
	m.mu.Unlock()
	f, err := m.Create(name, perm)
	if err != nil {
		return nil, err
	}
	h := f.(*file)
	h.read, h.appends = true, true
	return h, nil
}

// Mkdir implements fsys.FS.
func (m *FS) Mkdir(name string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("mkdir", name, false)
	if err != nil {
		return err
	}
	if r.n != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: errno(syscall.EEXIST)}
	}
	if err := changeable("mkdir", name, r.parent); err != nil {
		return err
	}
	n := m.newNode(kDir, perm, r.parent)
	r.parent.children[r.name] = n
	r.parent.mtime = m.tick()
	m.record(op{kind: opAdd, d1: r.parent, n1: r.name, nd: n})
	return nil
}

// ReadDir implements fsys.FS.
func (m *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("readdirent", name, true)
	if err != nil {
		return nil, err
	}
	if r.n.kind != kDir {
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: errno(syscall.ENOTDIR)}
	}
	out := make([]fs.DirEntry, 0, len(r.n.children))
	for n, c := range r.n.children {
		out = append(out, fs.FileInfoToDirEntry(info(n, c)))
	}
	fsys.SortEntries(out)
	return out, nil
}

// Stat implements fsys.FS.
func (m *FS) Stat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return info(filepath.Base(r.path), r.n), nil
}

// Lstat implements fsys.FS.
func (m *FS) Lstat(name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return info(filepath.Base(r.path), r.n), nil
}

// isBelow reports whether the clean path p is below the clean path dir.
func isBelow(p, dir string) bool {
	return strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// Rename implements fsys.FS: never replacing, EXDEV between volumes.
func (m *FS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lerr := func(e syscall.Errno) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: errno(e)}
	}
	from, err := m.lookup("rename", oldname, false)
	if err != nil {
		return lerr(syscall.ENOENT)
	}
	to, err := m.resolve("rename", newname, false)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: underlying(err)}
	}
	switch {
	case to.n == from.n:
		return nil
	case to.n != nil:
		return lerr(syscall.EEXIST)
	case from.parent == nil || to.parent == nil:
		return lerr(syscall.EBUSY)
	case from.n.vol != to.parent.vol || from.parent.vol != to.parent.vol:
		return lerr(syscall.EXDEV)
	case from.n.kind == kDir && (to.path == from.path || isBelow(to.path, from.path)):
		return lerr(syscall.EINVAL)
	case from.n.immutable:
		return lerr(syscall.EPERM)
	}
	if err := changeable("rename", oldname, from.parent); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: underlying(err)}
	}
	if err := changeable("rename", newname, to.parent); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: underlying(err)}
	}
	delete(from.parent.children, from.name)
	to.parent.children[to.name] = from.n
	from.parent.mtime, to.parent.mtime = m.tick(), m.tick()
	m.record(op{kind: opRename, d1: from.parent, n1: from.name, d2: to.parent, n2: to.name, nd: from.n})
	return nil
}

// Exchange implements fsys.FS.
func (m *FS) Exchange(a, b string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lerr := func(e syscall.Errno) error { return &os.LinkError{Op: "exchange", Old: a, New: b, Err: errno(e)} }
	ra, err := m.lookup("exchange", a, false)
	if err != nil {
		return lerr(syscall.ENOENT)
	}
	rb, err := m.lookup("exchange", b, false)
	if err != nil {
		return lerr(syscall.ENOENT)
	}
	switch {
	case ra.n == rb.n:
		return nil
	case ra.parent == nil || rb.parent == nil:
		return lerr(syscall.EBUSY)
	case ra.n.vol != rb.parent.vol || rb.n.vol != ra.parent.vol:
		return lerr(syscall.EXDEV)
	case isBelow(ra.path, rb.path) || isBelow(rb.path, ra.path):
		return lerr(syscall.EINVAL)
	case ra.n.immutable || rb.n.immutable:
		return lerr(syscall.EPERM)
	}
	for _, r := range []resolved{ra, rb} {
		if err := changeable("exchange", r.path, r.parent); err != nil {
			return &os.LinkError{Op: "exchange", Old: a, New: b, Err: underlying(err)}
		}
	}
	ra.parent.children[ra.name], rb.parent.children[rb.name] = rb.n, ra.n
	m.record(op{kind: opExchange, d1: ra.parent, n1: ra.name, nd: ra.n, d2: rb.parent, n2: rb.name, nd2: rb.n})
	return nil
}

// Remove implements fsys.FS.
func (m *FS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("remove", name, false)
	if err != nil {
		return err
	}
	if err := changeable("remove", name, r.parent); err != nil {
		return err
	}
	switch {
	case r.n.immutable:
		return &fs.PathError{Op: "remove", Path: name, Err: errno(syscall.EPERM)}
	case r.n.kind == kDir && len(r.n.children) > 0:
		return &fs.PathError{Op: "remove", Path: name, Err: errno(syscall.ENOTEMPTY)}
	}
	for _, v := range m.vols {
		if v.root == r.path && r.n.vol == v {
			return &fs.PathError{Op: "remove", Path: name, Err: errno(syscall.EBUSY)}
		}
	}
	delete(r.parent.children, r.name)
	r.parent.mtime = m.tick()
	if r.n.kind == kFile {
		r.n.vol.used -= int64(len(r.n.data))
	}
	m.record(op{kind: opDel, d1: r.parent, n1: r.name, nd: r.n})
	return nil
}

// RemoveAll implements fsys.FS, one Remove at a time.
func (m *FS) RemoveAll(name string) error { return fsys.RemoveAllVia(m, name) }

// Symlink implements fsys.FS.
func (m *FS) Symlink(target, link string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.resolve("symlink", link, false)
	if err != nil {
		return &os.LinkError{Op: "symlink", Old: target, New: link, Err: underlying(err)}
	}
	if r.n != nil {
		return &os.LinkError{Op: "symlink", Old: target, New: link, Err: errno(syscall.EEXIST)}
	}
	if err := changeable("symlink", link, r.parent); err != nil {
		return &os.LinkError{Op: "symlink", Old: target, New: link, Err: underlying(err)}
	}
	n := m.newNode(kLink, 0o777, r.parent)
	n.target = target
	r.parent.children[r.name] = n
	m.record(op{kind: opAdd, d1: r.parent, n1: r.name, nd: n})
	return nil
}

// Readlink implements fsys.FS.
func (m *FS) Readlink(name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if r.n.kind != kLink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errno(syscall.EINVAL)}
	}
	return r.n.target, nil
}

// SyncDir implements fsys.FS: it makes the changes of the folder's entries
// made so far durable (see the package doc).
func (m *FS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("sync", name, true)
	if err != nil {
		return err
	}
	if r.n.kind != kDir {
		return &fs.PathError{Op: "sync", Path: name, Err: errno(syscall.ENOTDIR)}
	}
	m.seq++
	r.n.lastSync = m.seq
	m.fold()
	return nil
}

// SyncVolume implements fsys.VolumeSyncer: every file's content and every
// folder's entries on the volume holding name become durable, like
// syncfs(2).
func (m *FS) SyncVolume(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("syncfs", name, true)
	if err != nil {
		return err
	}
	v := r.n.vol
	m.seq++
	var walk func(d *node)
	walk = func(d *node) {
		if d.vol == v {
			d.lastSync = m.seq
		}
		for _, c := range d.children {
			switch {
			case c.kind == kDir:
				walk(c)
			case c.kind == kFile && c.vol == v:
				c.synced = bytes.Clone(c.data)
				if c.synced == nil {
					c.synced = []byte{}
				}
			}
		}
	}
	for _, root := range m.roots {
		walk(root)
	}
	m.fold()
	return nil
}

var _ fsys.VolumeSyncer = (*FS)(nil)

// CanRemove implements fsys.FS: a read-only volume, an immutable parent,
// or anything immutable in the tree makes name not removable.
func (m *FS) CanRemove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.lookup("can-remove", name, false)
	if err != nil {
		return err
	}
	switch {
	case r.parent == nil:
		return &fsys.RemovalError{Path: name, Reason: "it is a root folder"}
	case r.parent.vol.readOnly:
		return &fsys.RemovalError{Path: name, Reason: "its filesystem is mounted read-only", Err: errno(syscall.EROFS)}
	case r.parent.immutable:
		return &fsys.RemovalError{Path: filepath.Dir(r.path), Reason: "it is immutable (chattr +i)", Err: errno(syscall.EPERM)}
	}
	var walk func(p string, n *node) error
	walk = func(p string, n *node) error {
		if n.immutable {
			return &fsys.RemovalError{Path: p, Reason: "it is immutable (chattr +i)", Err: errno(syscall.EPERM)}
		}
		if n.kind != kDir {
			return nil
		}
		names := make([]string, 0, len(n.children))
		for k := range n.children {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			if err := walk(filepath.Join(p, k), n.children[k]); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(r.path, r.n)
}

func underlying(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// fileInfo describes a node.
type fileInfo struct {
	name string
	n    *node
	size int64
	mode fs.FileMode
	mt   int64
}

func info(name string, n *node) fs.FileInfo {
	fi := &fileInfo{name: name, n: n, size: int64(len(n.data)), mode: n.perm, mt: n.mtime}
	switch n.kind {
	case kDir:
		fi.mode |= fs.ModeDir
		fi.size = 0
	case kLink:
		fi.mode = fs.ModeSymlink | 0o777
		fi.size = int64(len(n.target))
	}
	return fi
}

func (fi *fileInfo) Name() string      { return fi.name }
func (fi *fileInfo) Size() int64       { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode { return fi.mode }
func (fi *fileInfo) ModTime() time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(fi.mt) * time.Millisecond)
}
func (fi *fileInfo) IsDir() bool { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any    { return nil }

// file is an open file.
type file struct {
	m       *FS
	n       *node
	name    string
	gen     int
	write   bool
	read    bool // also readable (Append)
	appends bool // writes go to the end (Append)
	off     int64
	closed  bool
}

func (f *file) check(op string) error {
	switch {
	case f.closed:
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	case f.gen != f.m.gen:
		return &fs.PathError{Op: op, Path: f.name, Err: fmt.Errorf("handle from before a crash: %w", errno(syscall.EIO))}
	}
	return nil
}

func (f *file) Read(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if f.n.kind == kDir {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errno(syscall.EISDIR)}
	}
	if f.write && !f.read {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errno(syscall.EBADF)}
	}
	if f.off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[f.off:])
	f.off += int64(n)
	return n, nil
}

func (f *file) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	switch {
	case !f.write:
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errno(syscall.EBADF)}
	case f.n.vol.readOnly:
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errno(syscall.EROFS)}
	case f.n.immutable:
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errno(syscall.EPERM)}
	}
	if f.appends {
		f.off = int64(len(f.n.data))
	}
	end := f.off + int64(len(p))
	grow := end - int64(len(f.n.data))
	var err error
	if v := f.n.vol; grow > 0 && v.capacity > 0 && v.used+grow > v.capacity {
		fit := v.capacity - v.used
		if fit < 0 {
			fit = 0
		}
		p = p[:int64(len(p))-(grow-fit)]
		end = f.off + int64(len(p))
		err = &fs.PathError{Op: "write", Path: f.name, Err: errno(syscall.ENOSPC)}
	}
	if end > int64(len(f.n.data)) {
		f.n.vol.used += end - int64(len(f.n.data))
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[f.off:], p)
	f.off = end
	f.n.mtime = f.m.tick()
	return len(p), err
}

func (f *file) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("sync"); err != nil {
		return err
	}
	if f.n.kind == kFile {
		f.n.synced = bytes.Clone(f.n.data)
		if f.n.synced == nil {
			f.n.synced = []byte{}
		}
	}
	return nil
}

func (f *file) Stat() (fs.FileInfo, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return nil, err
	}
	return info(filepath.Base(f.name), f.n), nil
}

func (f *file) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}
