package client

import (
	"io"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress counts the bytes of the package that are in place or on their
// way. add may be called from many goroutines, with a negative n when bytes
// are thrown away.
type progress interface {
	add(n int64)
	// finish stops drawing; ok says whether the download succeeded.
	finish(ok bool)
	// writer prints lines above the bar until finish; nil when nothing is
	// drawn.
	writer() io.Writer
}

// newProgress returns a bar drawn on w, or a progress that draws nothing
// when w is nil.
func newProgress(w io.Writer, name string, total int64) progress {
	if w == nil {
		return noProgress{}
	}
	// The caller decided to draw on w (Options.Progress): refresh even when
	// mpb does not see a terminal in w, as for a wrapped *os.File.
	p := mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(64), mpb.WithRefreshRate(150*time.Millisecond))
	bar := p.New(total, mpb.BarStyle(),
		mpb.PrependDecorators(
			decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace}),
			decor.CountersKibiByte("% .1f / % .1f"),
		),
		mpb.AppendDecorators(
			decor.AverageSpeed(decor.SizeB1024(0), " % .1f", decor.WC{C: decor.DextraSpace}),
			decor.Percentage(decor.WC{W: 5}),
		),
	)
	return &barProgress{p: p, bar: bar}
}

type noProgress struct{}

func (noProgress) add(int64)         {}
func (noProgress) finish(bool)       {}
func (noProgress) writer() io.Writer { return nil }

type barProgress struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func (b *barProgress) add(n int64) {
	if n != 0 {
		b.bar.IncrInt64(n)
	}
}

func (b *barProgress) finish(ok bool) {
	if ok {
		b.bar.SetTotal(-1, true) // complete, also for an empty package
	} else {
		b.bar.Abort(false)
	}
	b.p.Wait()
}

func (b *barProgress) writer() io.Writer { return b.p }
