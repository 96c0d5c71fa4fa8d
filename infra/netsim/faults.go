package netsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// DefaultWithin is Faults.Within when it is zero.
const DefaultWithin = 1 << 20

// Faults makes a link fail the way a network or a server does, on the
// bytes the server sends to its client (the answers). The zero value
// injects nothing. Each connection draws one number when it is accepted,
// from a generator seeded with Seed, in accept order: a client that opens
// its connections one after another meets the same faults on every run.
// The number picks at most one fault: ResetRate first, then StallRate.
type Faults struct {
	// Seed seeds the generator; zero means 1.
	Seed int64
	// ResetRate is the fraction of connections reset (a TCP reset to the
	// client, the server's side closed) once the server has sent them a
	// number of bytes drawn from [0, Within): mid-stream.
	ResetRate float64
	// StallRate is the fraction of connections whose bytes from the server
	// stop flowing once a number drawn from [0, Within) has passed; the
	// connection stays open, and silent, until the client closes it.
	StallRate float64
	// Within bounds the bytes after which a reset or a stall happens; zero
	// means DefaultWithin.
	Within int64
}

// Validate reports every problem of f.
func (f Faults) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		rate float64
	}{{"reset", f.ResetRate}, {"stall", f.StallRate}} {
		if r.rate < 0 || r.rate > 1 {
			errs = append(errs, fmt.Errorf("netsim: %s rate %v is not in [0,1]", r.name, r.rate))
		}
	}
	if f.ResetRate+f.StallRate > 1 {
		errs = append(errs, fmt.Errorf("netsim: rates add up to %v > 1", f.ResetRate+f.StallRate))
	}
	if f.Within < 0 {
		errs = append(errs, errors.New("netsim: Within must not be negative"))
	}
	return errors.Join(errs...)
}

// FaultCounts are the faults a link has injected.
type FaultCounts struct {
	Resets  int64 // connections reset mid-stream
	Stalls  int64 // connections whose answer stopped flowing
	Refusal int64 // stretches of refused connections (Refuse)
	Dropped int64 // connections open when a refusal began, reset by it
}

// String lists the counts, e.g. "resets=2 stalls=1 refusals=1 dropped=3".
func (c FaultCounts) String() string {
	return fmt.Sprintf("resets=%d stalls=%d refusals=%d dropped=%d", c.Resets, c.Stalls, c.Refusal, c.Dropped)
}

// SetFaults replaces the link's random faults (and restarts its generator
// from f.Seed) for the connections accepted from now on.
func (l *Link) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	if f.Within == 0 {
		f.Within = DefaultWithin
	}
	r := l.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults, r.rng = f, rand.New(rand.NewPCG(uint64(seed), 0x5851f42d4c957f2d))
	return nil
}

// ResetNext resets the next connection whose answers reach n bytes (of
// those the random faults spared) right there; calls queue up, each
// taken by one connection.
func (l *Link) ResetNext(n int64) { l.r.force(connPlan{at: max(n, 0)}) }

// StallNext stops the answers of the next connection whose answers reach
// n bytes (of those the random faults spared) right there, until the
// client closes it; calls queue up (with ResetNext), each taken by one
// connection.
func (l *Link) StallNext(n int64) { l.r.force(connPlan{at: max(n, 0), stall: true}) }

// force queues plan for the next connection that reaches plan.at bytes.
func (r *relay) force(plan connPlan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forced = append(r.forced, plan)
	r.nforced.Add(1)
}

// claim takes the first queued plan (ResetNext, StallNext) that a
// connection whose answers reach reach bytes, passed of them sent, meets;
// its fault happens at the bytes it names, or at once if they were passed.
func (r *relay) claim(passed, reach int64) (connPlan, bool) {
	if r.nforced.Load() == 0 {
		return none, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.forced {
		if p.at < reach {
			r.forced = append(r.forced[:i], r.forced[i+1:]...)
			r.nforced.Add(-1)
			p.at = max(p.at, passed)
			return p, true
		}
	}
	return none, false
}

// Injected returns the faults injected so far.
func (l *Link) Injected() FaultCounts {
	r := l.r
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}

// Refuse takes the server down for d: the connections open now are reset
// and connecting fails (connection refused: nothing listens on the link's
// address) until d has passed; then the link listens again on the same
// address. It returns at once.
func (l *Link) Refuse(d time.Duration) {
	r := l.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.refusing {
		return
	}
	r.refusing = true
	r.counts.Refusal++
	_ = r.ln.Close()
	for c := range r.conns {
		if c.client {
			r.counts.Dropped++
		}
		resetConn(c.Conn)
	}
	r.wg.Add(1)
	go r.relisten(d)
}

// relisten listens on the link's address again after d, unless the link
// was closed meanwhile.
func (r *relay) relisten(d time.Duration) {
	defer r.wg.Done()
	select {
	case <-time.After(d):
	case <-r.quit:
		return
	}
	for {
		ln, err := net.Listen("tcp", r.addr)
		r.mu.Lock()
		switch {
		case r.closed:
			r.mu.Unlock()
			if err == nil {
				_ = ln.Close()
			}
			return
		case err == nil:
			r.ln, r.refusing = ln, false
			r.wg.Add(1)
			go r.accept(ln)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		// The port is taken for a moment (another listener, TIME_WAIT):
		// try again shortly.
		select {
		case <-time.After(20 * time.Millisecond):
		case <-r.quit:
			return
		}
	}
}

// connPlan is what a connection's answers meet: a reset or a stall after
// at bytes, or nothing (at < 0).
type connPlan struct {
	at    int64
	stall bool
}

// none is the plan of a connection without faults.
var none = connPlan{at: -1}

// drawLocked decides the random plan of a new connection. Call with mu
// held.
func (r *relay) drawLocked() connPlan {
	f := r.faults
	if r.rng == nil || (f.ResetRate == 0 && f.StallRate == 0) {
		return none
	}
	x := r.rng.Float64()
	at := r.rng.Int64N(f.Within)
	switch {
	case x < f.ResetRate:
		return connPlan{at: at}
	case x < f.ResetRate+f.StallRate:
		return connPlan{at: at, stall: true}
	}
	return none
}

// resetConn closes c with a TCP reset (SO_LINGER 0) where it can.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
