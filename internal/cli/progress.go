package cli

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// isTerminal reports whether w is a terminal, where progress bars go.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// byteBar is a progress bar of bytes on a terminal.
type byteBar struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func newByteBar(w io.Writer, label string) *byteBar {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	bar := p.AddBar(0,
		mpb.PrependDecorators(decor.Name(label+" "), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), decor.Name(" "), decor.Percentage()),
	)
	return &byteBar{p: p, bar: bar}
}

func (b *byteBar) SetTotal(n int64) { b.bar.SetTotal(n, false) }
func (b *byteBar) Add(n int64)      { b.bar.IncrInt64(n) }

// Wait completes the bar and waits for its last drawing.
func (b *byteBar) Wait() {
	b.bar.SetTotal(-1, true)
	b.p.Wait()
}
