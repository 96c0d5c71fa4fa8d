// Package stall notices transfers that stop moving bytes: a watchdog that
// cancels a request when none of its bodies has moved a byte for a while,
// so that a connection that hangs mid-body fails (transiently) instead of
// holding a worker for ever. Timeouts on a whole request cannot do this for
// bodies of any size; a deadline per byte moved can. Written here because
// net/http and the AWS SDK offer deadlines per request or per connection
// read, not per body, and no maintained module does this alone.
package stall

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// ErrStalled reports a transfer cancelled because no byte moved for the
// watchdog's time. It is transient.
var ErrStalled = errclass.New(errclass.Transient, "no byte moved for too long")

// Watchdog calls cancel when it has not been fed for its duration. It is
// fed by every read of a body it wraps that returns bytes. Safe for
// concurrent use.
type Watchdog struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

// Start starts a watchdog of d that calls cancel when it fires; d <= 0
// gives one that never fires.
func Start(d time.Duration, cancel func()) *Watchdog {
	w := &Watchdog{d: d}
	if d > 0 {
		w.t = time.AfterFunc(d, func() {
			w.fired.Store(true)
			cancel()
		})
	}
	return w
}

// feed restarts the watchdog's time, unless it has fired.
func (w *Watchdog) feed() {
	if w.t != nil && !w.fired.Load() {
		w.t.Reset(w.d)
	}
}

// Stop stops the watchdog; it fires no more.
func (w *Watchdog) Stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// Stalled reports whether the watchdog fired.
func (w *Watchdog) Stalled() bool { return w.fired.Load() }

// Reader returns r, feeding the watchdog with every read that returns bytes.
func (w *Watchdog) Reader(r io.Reader) io.Reader { return &reader{r: r, w: w} }

// ReadCloser returns rc, feeding the watchdog with every read that returns
// bytes; its Close closes rc and then calls done.
func (w *Watchdog) ReadCloser(rc io.ReadCloser, done func()) io.ReadCloser {
	return &readCloser{reader: reader{r: rc, w: w}, c: rc, done: done}
}

type reader struct {
	r io.Reader
	w *Watchdog
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.feed()
	}
	return n, err
}

type readCloser struct {
	reader
	c    io.Closer
	done func()
}

func (r *readCloser) Close() error {
	err := r.c.Close()
	if r.done != nil {
		r.done()
	}
	return err
}
