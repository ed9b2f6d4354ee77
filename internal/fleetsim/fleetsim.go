// Package fleetsim simulates a fleet of Package Servers against a running
// Notification Server, to measure what the NS costs at scale. Each
// simulated PS enrolls with a one-time token and long-polls its
// configuration as internal/ps/loop.go does: GET /agent/{name}/config with
// its ETag and the wait its settings give, a client timeout of the wait
// plus 30 s, and an exponential backoff with jitter after an error. It does
// nothing with what it receives but remember when it received it.
//
// A Fleet measures, for a change an administrator makes, how long each
// poller took to receive it (Measure), and how many other polls an
// enrollment woke (the NS's GET /stats counters). The e2e benchmark
// BenchmarkFleet drives it against a real `wharf ns serve` (`make bench`).
package fleetsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
)

// Poll pacing, as internal/ps/loop.go.
const (
	defaultPollWait = 30 * time.Second
	pollSlack       = 30 * time.Second
)

// Fleet is a set of simulated Package Servers polling one NS.
type Fleet struct {
	ns    string
	admin *apiclient.Client
	hc    *http.Client

	mu      sync.Mutex
	pollers []*Poller

	// match is the predicate of the change being measured (matchGen its
	// generation); each poller records when it first received a
	// configuration that satisfies it.
	match atomic.Pointer[func(api.AgentConfig) bool]
	// answers counts the 200 answers received since start (all pollers).
	answers atomic.Int64
}

type Poller struct {
	name   string
	client *apiclient.Client
	hit    atomic.Int64 // unix nanoseconds of the first matching answer; 0: none yet
	gen    atomic.Int64 // the generation of match the hit is for
	ready  chan struct{}
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an empty fleet for the NS at nsURL, administered with
// adminToken. Its HTTP client keeps one connection per poller.
func New(nsURL, adminToken string, maxConns int) (*Fleet, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        maxConns + 64,
		MaxIdleConnsPerHost: maxConns + 64,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	hc := &http.Client{Transport: tr}
	admin, err := apiclient.New(nsURL, adminToken, hc)
	if err != nil {
		return nil, err
	}
	return &Fleet{ns: nsURL, admin: admin, hc: hc}, nil
}

// Admin returns the fleet's admin client.
func (f *Fleet) Admin() *apiclient.Client { return f.admin }

// Close stops every poller.
func (f *Fleet) Close() {
	f.mu.Lock()
	list := f.pollers
	f.mu.Unlock()
	for _, p := range list {
		p.cancel()
	}
	for _, p := range list {
		<-p.done
	}
	f.hc.CloseIdleConnections()
}

// Add enrolls n new Package Servers named prefix-0... (parallel at most
// at once) and starts their polls; it returns when each has its first
// configuration.
func (f *Fleet) Add(ctx context.Context, prefix string, n, parallel int) error {
	sem := make(chan struct{}, parallel)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, err := f.Enroll(ctx, fmt.Sprintf("%s-%d", prefix, i))
			if err != nil {
				errc <- err
				return
			}
			select {
			case <-p.ready:
			case <-ctx.Done():
				errc <- ctx.Err()
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// Enroll enrolls one Package Server and starts its poll loop.
func (f *Fleet) Enroll(ctx context.Context, name string) (*Poller, error) {
	tok, err := f.admin.CreateEnrollToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", name, err)
	}
	anon, _ := apiclient.New(f.ns, "", f.hc)
	e, err := anon.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: name, OS: "linux", URL: "http://127.0.0.1:1"})
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", name, err)
	}
	client, err := apiclient.New(f.ns, e.Credential, f.hc)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Poller{name: name, client: client, ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	f.pollers = append(f.pollers, p)
	f.mu.Unlock()
	go f.loop(pctx, p)
	return p, nil
}

// Ready returns a channel closed when the poller has its first
// configuration.
func (p *Poller) Ready() <-chan struct{} { return p.ready }

// Size returns the number of pollers.
func (f *Fleet) Size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pollers)
}

// Answers returns the number of 200 answers (new configurations) the
// pollers received since the fleet started.
func (f *Fleet) Answers() int64 { return f.answers.Load() }

var matchGen atomic.Int64

// loop is internal/ps/loop.go's poll loop, less what the PS does with a
// configuration.
func (f *Fleet) loop(ctx context.Context, p *Poller) {
	defer close(p.done)
	var (
		etag     string
		last     api.AgentConfig
		have     bool
		failures int
	)
	for ctx.Err() == nil {
		wait := defaultPollWait
		if s := last.Settings.PollWaitSeconds; s > 0 {
			wait = time.Duration(s) * time.Second
		}
		tag := etag
		if !have {
			tag, wait = "", 0
		}
		pctx, cancel := context.WithTimeout(ctx, wait+pollSlack)
		cfg, newTag, changed, err := p.client.AgentConfig(pctx, p.name, tag, wait)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			delay := backoff(failures)
			failures++
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			continue
		}
		failures = 0
		if changed {
			last, etag, have = cfg, newTag, true
			f.answers.Add(1)
			p.once.Do(func() { close(p.ready) })
			if m := f.match.Load(); m != nil && (*m)(cfg) {
				g := matchGen.Load()
				if p.gen.Load() != g {
					p.hit.Store(time.Now().UnixNano())
					p.gen.Store(g)
				}
			}
		}
	}
}

// backoff is internal/ps's pollBackoff: 1 s doubling to 1 min, full
// jitter in the upper half.
func backoff(n int) time.Duration {
	d := time.Second
	for i := 0; i < n && d < time.Minute; i++ {
		d *= 2
	}
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

// Latency is what Measure found.
type Latency struct {
	N             int // pollers measured
	Reached       int // those that received the change within the timeout
	WithinOneS    int // those that received it within a second
	P50, P99, Max time.Duration
	Call          time.Duration // how long the admin call itself took
	Missing       []string      // a few names of pollers the change never reached
}

// Measure makes a change and waits until every poller received a
// configuration that satisfies has, or timeout passes. Latency runs from
// the start of the admin call to each poller's receipt.
func (f *Fleet) Measure(ctx context.Context, timeout time.Duration, has func(api.AgentConfig) bool, change func(ctx context.Context) error) (Latency, error) {
	f.mu.Lock()
	pollers := slices.Clone(f.pollers)
	f.mu.Unlock()
	gen := matchGen.Add(1)
	f.match.Store(&has)
	defer f.match.Store(nil)
	start := time.Now()
	if err := change(ctx); err != nil {
		return Latency{}, err
	}
	out := Latency{N: len(pollers), Call: time.Since(start)}
	deadline := time.Now().Add(timeout)
	for {
		reached := 0
		for _, p := range pollers {
			if p.gen.Load() == gen {
				reached++
			}
		}
		if reached == len(pollers) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var lat []time.Duration
	for _, p := range pollers {
		if p.gen.Load() != gen {
			if len(out.Missing) < 5 {
				out.Missing = append(out.Missing, p.name)
			}
			continue
		}
		d := time.Duration(p.hit.Load() - start.UnixNano())
		lat = append(lat, d)
		if d <= time.Second {
			out.WithinOneS++
		}
	}
	out.Reached = len(lat)
	out.P50, out.P99, out.Max = percentiles(lat)
	return out, nil
}

// percentiles returns p50, p99 and the maximum of ds.
func percentiles(ds []time.Duration) (p50, p99, top time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return at(0.50), at(0.99), ds[len(ds)-1]
}

// EnrollCost enrolls one more Package Server while the fleet polls and
// says how many other polls it woke: the difference of the NS's wake
// counter (GET /stats; -1 when the NS has none) across the enrollment and
// its first poll plus settle (the new server's own first poll is no wake:
// it has no ETag yet), and the new configurations the other pollers
// received meanwhile.
func (f *Fleet) EnrollCost(ctx context.Context, name string, settle time.Duration) (woken, answers int64, took time.Duration, err error) {
	before, statsErr := f.admin.PollStats(ctx)
	answersBefore := f.answers.Load()
	start := time.Now()
	p, err := f.Enroll(ctx, name)
	if err != nil {
		return 0, 0, 0, err
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return 0, 0, 0, ctx.Err()
	}
	took = time.Since(start)
	select {
	case <-time.After(settle): // a woken poll answers within this
	case <-ctx.Done():
		return 0, 0, 0, ctx.Err()
	}
	after, statsErr2 := f.admin.PollStats(ctx)
	answers = f.answers.Load() - answersBefore - 1 // less the new poller's own
	if statsErr != nil || statsErr2 != nil {
		return -1, answers, took, nil
	}
	return after.Wakes - before.Wakes, answers, took, nil
}
