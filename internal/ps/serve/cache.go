//go:build !windows

package serve

import (
	"container/list"
	"io"
	"sync"
	"time"
)

// openCache keeps handles (open folders, open files) between requests,
// keyed by path: at most max of them, least recently used going first, and
// none longer than idle after its last use, so a volume whose files are no
// longer asked for can be unmounted a moment later. A handle is closed by
// its last user once dropped. Its methods are safe for concurrent use.
type openCache[V io.Closer] struct {
	mu     sync.Mutex
	max    int
	idle   time.Duration
	m      map[string]*cached[V]
	lru    list.List // of *cached[V], most recently used at the front
	timer  *time.Timer
	closed bool
}

// cached is one handle of an openCache.
type cached[V io.Closer] struct {
	key     string
	v       V
	refs    int
	dropped bool
	used    time.Time
	elem    *list.Element
}

func newOpenCache[V io.Closer](max int, idle time.Duration) *openCache[V] {
	return &openCache[V]{max: max, idle: idle, m: map[string]*cached[V]{}}
}

// get returns the handle cached under key, held once, or nil.
func (c *openCache[V]) get(key string) *cached[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e != nil {
		e.refs++
		c.lru.MoveToFront(e.elem)
	}
	return e
}

// add caches v under key and returns it held once; when another caller
// cached one meanwhile, v is closed and that one returned. After close, v
// is returned uncached (closed at its put).
func (c *openCache[V]) add(key string, v V) *cached[V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[key]; e != nil {
		v.Close()
		e.refs++
		c.lru.MoveToFront(e.elem)
		return e
	}
	e := &cached[V]{key: key, v: v, refs: 1}
	if c.closed {
		e.dropped = true
		return e
	}
	e.elem = c.lru.PushFront(e)
	c.m[key] = e
	for c.lru.Len() > c.max {
		c.dropLocked(c.lru.Back().Value.(*cached[V]))
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(c.idle, c.sweep)
	}
	return e
}

// put releases a handle get or add returned.
func (c *openCache[V]) put(e *cached[V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.used = time.Now()
	if e.refs--; e.refs == 0 && e.dropped {
		e.v.Close()
	}
}

// drop forgets e; it is closed once nobody uses it.
func (c *openCache[V]) drop(e *cached[V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(e)
}

func (c *openCache[V]) dropLocked(e *cached[V]) {
	if e.dropped {
		return
	}
	e.dropped = true
	if c.m[e.key] == e {
		delete(c.m, e.key)
	}
	c.lru.Remove(e.elem)
	if e.refs == 0 {
		e.v.Close()
	}
}

// sweep drops the handles idle for longer than idle, and runs again while
// any is left.
func (c *openCache[V]) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for el := c.lru.Back(); el != nil; {
		e := el.Value.(*cached[V])
		el = el.Prev()
		if e.refs == 0 && now.Sub(e.used) >= c.idle {
			c.dropLocked(e)
		}
	}
	c.timer = nil
	if c.lru.Len() > 0 && !c.closed {
		c.timer = time.AfterFunc(c.idle/2, c.sweep)
	}
}

// close drops every handle and caches no more.
func (c *openCache[V]) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for c.lru.Len() > 0 {
		c.dropLocked(c.lru.Front().Value.(*cached[V]))
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// len returns how many handles are cached.
func (c *openCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
