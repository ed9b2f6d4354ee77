package relocate

import (
	"errors"
	"sync"

	"github.com/wharf-project/wharf/internal/ps/fsys"
)

// groupSyncer coalesces the folder syncs of packages moving at once into
// volume syncs (group commit): a caller's Sync returns after a
// SyncVolume that started after the call, so everything the caller wrote
// before it is durable; callers arriving while a sync runs share the next
// one. Keys are the folders callers pass; each names its volume.
type groupSyncer struct {
	vs fsys.VolumeSyncer
	mu sync.Mutex
	by map[string]*syncQueue
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
	return &groupSyncer{vs: vs, by: map[string]*syncQueue{}}
}

// Sync makes everything written on the volume holding dir before the call
// durable. It fails with errors.ErrUnsupported when the FS cannot sync a
// volume.
func (g *groupSyncer) Sync(dir string) error {
	g.mu.Lock()
	q := g.by[dir]
	if q == nil {
		q = &syncQueue{}
		g.by[dir] = q
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
	delete(g.by, dir)
	g.mu.Unlock()
	return mine.err
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
