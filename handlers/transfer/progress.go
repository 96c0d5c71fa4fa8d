package transfer

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/infra/logging"
)

// ProgressFunc receives the progress of a file's transfer: the bytes
// written so far over all its targets, of total. It is called from several
// goroutines at once.
type ProgressFunc func(key string, done, total int64)

// progress counts the bytes a transfer has written, over all its targets.
type progress struct {
	key    string
	total  int64
	start  time.Time
	done   atomic.Int64
	report ProgressFunc // may be nil
}

func newProgress(key string, total int64, report ProgressFunc) *progress {
	return &progress{key: key, total: total, start: time.Now(), report: report}
}

func (p *progress) add(n int64) {
	done := p.done.Add(n)
	if p.report != nil {
		p.report(p.key, done, p.total)
	}
}

// fields describes the progress as log fields: bytes done, percent, MB/s and
// the estimated time left.
func (p *progress) fields() logrus.Fields {
	done := p.done.Load()
	elapsed := time.Since(p.start)
	f := logrus.Fields{"bytes_done": done, "bytes_total": p.total, "mb_per_s": mbps(done, elapsed)}
	if p.total > 0 {
		f["percent"] = float64(done) * 100 / float64(p.total)
	}
	if done > 0 && done < p.total {
		f["eta_s"] = (elapsed.Seconds() / float64(done)) * float64(p.total-done)
	}
	return f
}

// reportProgress logs the progress every ProgressInterval (code 15006) until
// the returned stop is called.
func (e *Engine) reportProgress(ctx context.Context, p *progress, log logrus.FieldLogger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(e.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				logging.WithCode(log, logging.CodeTransferStatus).WithFields(p.fields()).Info("transfer progress")
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
