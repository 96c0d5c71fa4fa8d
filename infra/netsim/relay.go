package netsim

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Why not toxiproxy: the benchmark runs the proxy on the same two cores as
// the service, the S3 server and the DRACOON emulator, so the proxy's own
// CPU is taken from what it measures. toxiproxy (v2.12) copies each 32 KiB
// read into a fresh chunk, hands it through one goroutine per toxic, and
// sleeps per chunk for the bandwidth toxic; measured here it spent about
// 1.9 CPU-s per GiB relayed at 40 MB/s per connection, this relay about
// 0.6, the floor being the kernel's copies. The relay does only what the
// profile needs: a due time and a rate per direction.

const (
	// relayBuffer is the size of one read; larger reads mean fewer
	// wake-ups per byte.
	relayBuffer = 256 << 10
	// relayQueue bounds the reads held back per direction (their due time
	// not reached or the rate used up): enough for 50 ms at 2 GB/s, so the
	// latency alone does not cap a connection, while a capped connection
	// pushes back on its sender instead of buffering without end.
	relayQueue = 512
)

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

// chunk is one read on its way: the bytes and when they may leave.
type chunk struct {
	buf *[]byte
	n   int
	due time.Time
}

// pipe copies src to dst: each read leaves p.Latency after it arrived, and
// no faster than p.Bandwidth. At the end of src it half-closes dst; on an
// error it closes both, as a broken link would.
func (r *relay) pipe(dst, src net.Conn, sent *atomic.Int64) {
	queue := make(chan chunk, relayQueue)
	done := make(chan struct{})
	go func() {
		defer close(queue)
		for {
			buf := r.pool.Get().(*[]byte)
			n, err := src.Read(*buf)
			if n > 0 {
				select {
				case queue <- chunk{buf: buf, n: n, due: time.Now().Add(r.p.Latency)}:
				case <-done:
					return
				}
			} else {
				r.pool.Put(buf)
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					dst.Close()
				}
				return
			}
		}
	}()
	defer close(done)
	var free time.Time // when the link has sent what it was given
	for c := range queue {
		at := c.due
		if r.p.Bandwidth > 0 && free.After(at) {
			at = free
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if r.p.Bandwidth > 0 {
			free = at.Add(time.Duration(float64(c.n) / float64(r.p.Bandwidth) * float64(time.Second)))
		}
		n, err := dst.Write((*c.buf)[:c.n])
		sent.Add(int64(n))
		r.pool.Put(c.buf)
		if err != nil {
			src.Close()
			for c := range queue { // let the reader end
				r.pool.Put(c.buf)
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
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
