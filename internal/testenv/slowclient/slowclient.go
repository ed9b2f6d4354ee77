// Package slowclient is a test helper that attacks an HTTP server with
// slow clients — connections that send their request header, or their
// body, one byte at a time — while measuring how the server treats normal
// requests meanwhile, and when it dropped each slow connection.
package slowclient

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Attack describes the slow clients and the normal requests.
type Attack struct {
	Addr string // host:port of the server
	// Header is a request's start and headers, without the final blank
	// line (e.g. "GET / HTTP/1.1\r\nHost: x\r\n"); the slow header clients
	// send it, then nothing more, one byte per Every.
	Header string
	// BodyHeader is a complete header (with the blank line) announcing a
	// body that the slow body clients then send one byte per Every.
	BodyHeader string
	Slow       int           // slow connections, half of each kind
	Every      time.Duration // between two bytes of a slow client
	// Normal is a request made again and again meanwhile; it must answer
	// with a status below 500 (and not be a dropped connection).
	Normal func() (*http.Request, error)
	Client *http.Client
	// For is how long the attack lasts.
	For time.Duration
}

// Result is what the attack saw.
type Result struct {
	// Dropped are the times from the start of each slow connection to the
	// server closing it (sorted); a connection the server had not closed
	// when the attack ended is not in it.
	Dropped []time.Duration
	// Alive counts the slow connections still open at the end.
	Alive int
	// Normal are the latencies of the normal requests (sorted); Failed
	// counts those that failed.
	Normal []time.Duration
	Failed int
	Errors []string // the first few failures
}

// Max returns the largest of ds, 0 for none.
func Max(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1]
}

// Run runs the attack.
func Run(a Attack) Result {
	var (
		mu  sync.Mutex
		res Result
		wg  sync.WaitGroup
	)
	stop := make(chan struct{})
	for i := 0; i < a.Slow; i++ {
		payload := a.Header
		if i%2 == 1 {
			payload = a.BodyHeader
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			start := time.Now()
			conn, err := net.Dial("tcp", a.Addr)
			if err != nil {
				mu.Lock()
				res.Errors = append(res.Errors, fmt.Sprintf("slow client %d: dial: %v", i, err))
				mu.Unlock()
				return
			}
			defer conn.Close()
			closed := make(chan struct{})
			go func() { // notice the server closing the connection
				io.Copy(io.Discard, conn)
				close(closed)
			}()
			// A header client trickles its header, then an endless header
			// line; a body client sends its header whole, then trickles
			// the body. Neither ever completes its request.
			trickle := payload + "X-Slow: "
			if i%2 == 1 {
				conn.Write([]byte(payload))
				trickle = ""
			}
			sent := 0
			tick := time.NewTicker(a.Every)
			defer tick.Stop()
			for {
				select {
				case <-closed:
					mu.Lock()
					res.Dropped = append(res.Dropped, time.Since(start))
					mu.Unlock()
					return
				case <-stop:
					mu.Lock()
					res.Alive++
					mu.Unlock()
					return
				case <-tick.C:
					b := byte('x')
					if sent < len(trickle) {
						b = trickle[sent]
					}
					conn.Write([]byte{b})
					sent++
				}
			}
		}(i)
	}
	deadline := time.Now().Add(a.For)
	time.Sleep(a.Every) // every slow client has started
	for time.Now().Before(deadline) {
		req, err := a.Normal()
		if err != nil {
			panic(err)
		}
		t0 := time.Now()
		resp, err := a.Client.Do(req)
		d := time.Since(t0)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		mu.Lock()
		if err != nil {
			res.Failed++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, err.Error())
			}
		} else {
			res.Normal = append(res.Normal, d)
		}
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	sort.Slice(res.Dropped, func(i, j int) bool { return res.Dropped[i] < res.Dropped[j] })
	sort.Slice(res.Normal, func(i, j int) bool { return res.Normal[i] < res.Normal[j] })
	return res
}
