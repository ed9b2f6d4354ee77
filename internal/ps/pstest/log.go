package pstest

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// Logger returns a logger that writes to t.Log until the test ends (later
// lines are dropped, so a goroutine that outlives the test cannot panic).
func Logger(t testing.TB) *slog.Logger {
	w := &tlogWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tlogWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Helper()
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
