package netsim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Why not toxiproxy: the benchmark runs the proxy on the same two cores as
// the service, the S3 server and the DRACOON emulator, so the proxy's own
// CPU is taken from what it measures. toxiproxy (v2.12) copies each 32 KiB
// read into a fresh chunk, hands it through one goroutine per toxic, and
// sleeps per chunk for the bandwidth toxic. Measured here, side by side (1
// GiB over 10 connections at 40 MB/s each, 25 ms): toxiproxy cost about 2.3
// CPU-s per GiB relayed beyond the clients' own, this relay about 1.0, and
// moved 342 against 392 MB/s (10 x 40 MB/s is the cap). The relay does only
// what the profile needs: a due time and a rate per direction.

const (
	// relayBuffer is the size of one read; larger reads mean fewer
	// wake-ups per byte.
	relayBuffer = 256 << 10
	// relaySmall: a read shorter than this is copied out of its buffer,
	// so that many small reads held back do not each pin relayBuffer bytes.
	relaySmall = 32 << 10
	// relayQueue bounds the reads held back per direction.
	relayQueue = 512
)

// relayHeld is how many bytes a direction holds back (due time not reached
// or rate used up) before it stops reading and so pushes back on its
// sender: twice what the link carries during its latency, at least 4 MiB;
// 64 MiB when the bandwidth is not capped (50 ms at 1.3 GB/s).
func relayHeld(p Profile) int64 {
	if p.Bandwidth == 0 {
		return 64 << 20
	}
	return max(4<<20, 2*p.Bandwidth*int64(p.Latency)/int64(time.Second))
}

// relay is a running proxy.
type relay struct {
	addr     string // the address listened on, kept across refusals
	upstream string
	p        Profile
	up, down atomic.Int64  // bytes delivered to the server, to the clients
	quit     chan struct{} // closed by close

	mu       sync.Mutex
	ln       net.Listener
	conns    map[trackedConn]struct{}
	closed   bool
	refusing bool // Refuse: nothing listens until relisten
	faults   Faults
	rng      *rand.Rand   // of faults; nil: none
	forced   []connPlan   // ResetNext, StallNext: plans for the next connections that reach them
	nforced  atomic.Int64 // len(forced), read without mu
	counts   FaultCounts
	wg       sync.WaitGroup
	pool     sync.Pool
}

// trackedConn is a relayed connection: the client's side, or the server's.
type trackedConn struct {
	net.Conn
	client bool
}

// startRelay listens on listen and relays every connection to upstream
// through p.
func startRelay(listen, upstream string, p Profile) (*relay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, addr: ln.Addr().String(), upstream: upstream, p: p, conns: map[trackedConn]struct{}{},
		quit: make(chan struct{})}
	r.pool.New = func() any { b := make([]byte, relayBuffer); return &b }
	r.wg.Add(1)
	go r.accept(ln)
	return r, nil
}

// accept serves the connections of ln until it is closed (by close, or by
// Refuse).
func (r *relay) accept(ln net.Listener) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		plan := r.drawLocked()
		r.mu.Unlock()
		r.wg.Add(1)
		go r.serve(c, plan)
	}
}

// track registers c for Close and Refuse; false when the relay is closed.
func (r *relay) track(c trackedConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) untrack(c trackedConn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// count adds one injected fault of the plan's kind.
func (r *relay) count(plan connPlan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if plan.stall {
		r.counts.Stalls++
	} else {
		r.counts.Resets++
	}
}

// serve relays one client connection, both directions, until both ended;
// the answers (server to client) meet plan.
func (r *relay) serve(client net.Conn, plan connPlan) {
	defer r.wg.Done()
	defer client.Close()
	tc := trackedConn{client, true}
	if !r.track(tc) {
		return
	}
	defer r.untrack(tc)
	server, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	ts := trackedConn{server, false}
	if !r.track(ts) {
		return
	}
	defer r.untrack(ts)
	// gone ends when the client's side ends (it closed, or the link did):
	// a stalled answer waits for it.
	gone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer close(gone); r.pipe(server, client, &r.up, none, nil, false) }()
	go func() { defer wg.Done(); r.pipe(client, server, &r.down, plan, gone, plan.at < 0) }()
	wg.Wait()
}

// chunk is one read on its way: the bytes, the pooled buffer that holds
// them (nil when they were copied out), and when they may leave.
type chunk struct {
	data []byte
	buf  *[]byte
	due  time.Time
}

// pipe copies src to dst: each read leaves p.Latency after it arrived, and
// no faster than p.Bandwidth. At the end of src it half-closes dst; on an
// error it closes both, as a broken link would. Once plan.at bytes have
// passed it resets both connections, or (plan.stall) sends nothing more
// until gone is closed and then closes both. With claim, a pipe without a
// plan takes a queued one (claim) when it reaches its bytes.
func (r *relay) pipe(dst, src net.Conn, sent *atomic.Int64, plan connPlan, gone <-chan struct{}, claim bool) {
	queue := make(chan chunk, relayQueue)
	held := semaphore.NewWeighted(relayHeld(r.p))
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		defer close(queue)
		for {
			buf := r.pool.Get().(*[]byte)
			n, err := src.Read(*buf)
			c := chunk{data: (*buf)[:n], buf: buf, due: time.Now().Add(r.p.Latency)}
			if n < relaySmall {
				c.data, c.buf = bytes.Clone(c.data), nil
				r.pool.Put(buf)
			}
			if n > 0 {
				if held.Acquire(ctx, int64(n)) != nil {
					return
				}
				queue <- c // never blocks for long: the writer drains the queue until it is closed
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					dst.Close()
				}
				return
			}
		}
	}()
	defer stop()
	var free time.Time // when the link has sent what it was given
	failed := false
	passed := int64(0) // bytes written to dst
	for c := range queue {
		if !failed {
			at := c.due
			if r.p.Bandwidth > 0 && free.After(at) {
				at = free
			}
			if d := time.Until(at); d > 0 {
				time.Sleep(d)
			}
			if r.p.Bandwidth > 0 {
				free = at.Add(time.Duration(float64(len(c.data)) / float64(r.p.Bandwidth) * float64(time.Second)))
			}
			data := c.data
			if claim && plan.at < 0 {
				plan, _ = r.claim(passed, passed+int64(len(data)))
			}
			fault := plan.at >= 0 && passed+int64(len(data)) > plan.at
			if fault {
				data = data[:plan.at-passed]
			}
			n, err := dst.Write(data)
			sent.Add(int64(n))
			passed += int64(n)
			if fault && err == nil {
				r.count(plan)
				if plan.stall {
					<-gone
				}
				resetConn(dst)
				err = errFault
			}
			if err != nil {
				// Stop the reader; drain what it queued.
				failed = true
				stop()
				src.Close()
			}
		}
		held.Release(int64(len(c.data)))
		if c.buf != nil {
			r.pool.Put(c.buf)
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok && !failed {
		_ = tc.CloseWrite()
	}
}

// errFault ends a pipe whose connection met its fault.
var errFault = errors.New("netsim: injected fault")

// close stops listening, closes every relayed connection and waits for the
// relay's goroutines. Closing again does nothing.
func (r *relay) close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	var err error
	if !r.refusing {
		err = r.ln.Close()
	}
	r.closed = true
	close(r.quit)
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}
