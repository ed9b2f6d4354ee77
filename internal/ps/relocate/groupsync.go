package relocate

import (
	"errors"
	"sync"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// groupSyncer coalesces the folder syncs of packages moving at once — the
// folders they are renamed in and out of — into volume syncs
// (group commit): a caller's Sync returns after a SyncVolume of its volume
// that started after the call, so everything the caller wrote before it is
// durable; callers arriving while a sync of their volume runs share the
// next one, whichever folder of the volume they name.
type groupSyncer struct {
	vs      fsys.VolumeSyncer
	mu      sync.Mutex
	by      map[string]*syncQueue // by volume
	volumes map[string]string     // folder → volume, as vs.Volume named it
}

type syncQueue struct {
	running bool
	next    *syncRound // the round new callers join; nil when none waits
}

type syncRound struct {
	done chan struct{}
	err  error
}

func newGroupSyncer(vs fsys.VolumeSyncer) *groupSyncer {
	return &groupSyncer{vs: vs, by: map[string]*syncQueue{}, volumes: map[string]string{}}
}

// Sync makes everything written on the volume holding dir before the call
// durable. It fails with errors.ErrUnsupported when the FS cannot sync a
// volume.
func (g *groupSyncer) Sync(dir string) error {
	key := g.volume(dir)
	g.mu.Lock()
	q := g.by[key]
	if q == nil {
		q = &syncQueue{}
		g.by[key] = q
	}
	if q.next == nil {
		q.next = &syncRound{done: make(chan struct{})}
	}
	mine := q.next
	if q.running {
		g.mu.Unlock()
		<-mine.done
		return mine.err
	}
	// Lead: run rounds until nobody waits, ours first.
	q.running = true
	for q.next != nil {
		r := q.next
		q.next = nil
		g.mu.Unlock()
		r.err = g.vs.SyncVolume(dir)
		close(r.done)
		g.mu.Lock()
	}
	q.running = false
	delete(g.by, key)
	g.mu.Unlock()
	return mine.err
}

// forget drops the folders' volumes remembered: called at the start of
// every Run and Recover, as a folder may be on another volume by then (a
// volume mounted over its parent).
func (g *groupSyncer) forget() {
	g.mu.Lock()
	clear(g.volumes)
	g.mu.Unlock()
}

// volume names the volume of dir (remembered per folder for the attempt);
// a folder whose volume cannot be told is a key of its own.
func (g *groupSyncer) volume(dir string) string {
	g.mu.Lock()
	v, ok := g.volumes[dir]
	g.mu.Unlock()
	if ok {
		return v
	}
	v, err := g.vs.Volume(dir)
	if err != nil {
		return "dir:" + dir
	}
	g.mu.Lock()
	if len(g.volumes) > 4096 {
		clear(g.volumes) // folders come and go; keep it small
	}
	g.volumes[dir] = v
	g.mu.Unlock()
	return v
}

// syncDir makes the entries of folder dir durable: through the group
// syncer where the FS can sync a volume, else with an fsync of the folder.
func (e *Engine) syncDir(dir string) error {
	if e.group != nil && !e.noVolumeSync.Load() {
		err := e.group.Sync(dir)
		if !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		e.noVolumeSync.Store(true)
	}
	return e.fs.SyncDir(dir)
}
