package netsim

import (
	"bytes"
	"context"
	"errors"
	"io"
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
	ln       net.Listener
	upstream string
	p        Profile
	up, down atomic.Int64 // bytes delivered to the server, to the clients

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	pool   sync.Pool
}

// startRelay listens on listen and relays every connection to upstream
// through p.
func startRelay(listen, upstream string, p Profile) (*relay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, upstream: upstream, p: p, conns: map[net.Conn]struct{}{}}
	r.pool.New = func() any { b := make([]byte, relayBuffer); return &b }
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

// track registers c for Close; false when the relay is closed.
func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// serve relays one client connection, both directions, until both ended.
func (r *relay) serve(client net.Conn) {
	defer r.wg.Done()
	defer client.Close()
	if !r.track(client) {
		return
	}
	defer r.untrack(client)
	server, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return
	}
	defer server.Close()
	if !r.track(server) {
		return
	}
	defer r.untrack(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pipe(server, client, &r.up) }()
	go func() { defer wg.Done(); r.pipe(client, server, &r.down) }()
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
// error it closes both, as a broken link would.
func (r *relay) pipe(dst, src net.Conn, sent *atomic.Int64) {
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
			n, err := dst.Write(c.data)
			sent.Add(int64(n))
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

// close stops listening, closes every relayed connection and waits for the
// relay's goroutines.
func (r *relay) close() error {
	err := r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}
