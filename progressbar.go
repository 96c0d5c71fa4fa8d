package main

import (
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressBars draws one progress bar per transferred file when out is a
// terminal; otherwise the transfer's log lines report progress.
type progressBars struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[string]*mpb.Bar
}

// newProgressBars returns bars on out, or nil when out is not a terminal.
func newProgressBars(out io.Writer) *progressBars {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progressBars{p: mpb.New(mpb.WithOutput(out), mpb.WithWidth(48)), bars: map[string]*mpb.Bar{}}
}

// update sets the bar of key (created on first use) to done of total bytes,
// counted over all targets.
func (b *progressBars) update(key string, done, total int64) {
	b.mu.Lock()
	bar, ok := b.bars[key]
	if !ok {
		bar = b.p.AddBar(total,
			mpb.PrependDecorators(decor.Name(key, decor.WCSyncSpaceR), decor.CountersKibiByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.AverageSpeed(decor.SizeB1024(0), " % .1f")))
		b.bars[key] = bar
	}
	b.mu.Unlock()
	bar.SetCurrent(done)
}

// wait ends the bars (complete or not) and waits for their last drawing.
func (b *progressBars) wait() {
	b.mu.Lock()
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}
