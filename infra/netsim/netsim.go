// Package netsim puts a simulated wide-area link between a client and a
// server on this machine: a TCP proxy on 127.0.0.1 that adds a latency to
// each direction and caps the bandwidth of each connection, as a server
// across the internet would. It runs in the calling process (relay.go), so
// no separate process or download is needed. It is for benchmarks and tests.
// It also injects faults (faults.go): connections reset mid-stream, answers
// that stop flowing, and stretches in which connecting is refused.
package netsim

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Profile is what the link does to the traffic.
type Profile struct {
	// Latency is added to each direction, so a round trip gains twice it.
	Latency time.Duration
	// Bandwidth caps each connection, in each direction, in bytes per
	// second (rounded down to whole kB/s); 0 means no cap.
	Bandwidth int64
}

// WAN is a customer's DRACOON across the internet: 25 ms each way (50 ms
// round trip) and 40 MB/s per connection.
var WAN = Profile{Latency: 25 * time.Millisecond, Bandwidth: 40_000_000}

// String describes p, e.g. "25ms each way, 40 MB/s per connection".
func (p Profile) String() string {
	bw := "unlimited"
	if p.Bandwidth > 0 {
		bw = fmt.Sprintf("%g MB/s per connection", float64(p.Bandwidth)/1e6)
	}
	return fmt.Sprintf("%s each way, %s", p.Latency, bw)
}

// Link is a running proxy. Close it when done.
type Link struct{ r *relay }

// Start listens on listen (host:port; "127.0.0.1:0" picks a free port) and
// relays every connection to upstream (host:port) through profile p. The
// upstream need not be up yet: each accepted connection dials it.
func Start(listen, upstream string, p Profile) (*Link, error) {
	if p.Latency < 0 || p.Bandwidth < 0 {
		return nil, errors.New("netsim: latency and bandwidth must not be negative")
	}
	if p.Bandwidth > 0 && p.Bandwidth < 1000 {
		return nil, errors.New("netsim: bandwidth below 1 kB/s")
	}
	r, err := startRelay(listen, upstream, p)
	if err != nil {
		return nil, fmt.Errorf("netsim: cannot listen on %s: %w", listen, err)
	}
	return &Link{r: r}, nil
}

// Addr is the host:port the link listens on.
func (l *Link) Addr() string { return l.r.addr }

// URL is http://Addr.
func (l *Link) URL() string { return "http://" + l.Addr() }

// Sent returns the bytes the link has delivered so far to the upstream
// server (up) and to its clients (down).
func (l *Link) Sent() (up, down int64) { return l.r.up.Load(), l.r.down.Load() }

// Close stops listening, closes every relayed connection and waits until
// the link's goroutines have ended.
func (l *Link) Close() error { return l.r.close() }

// FreePort returns a free host:port on 127.0.0.1, for a server that must
// be told its own address before it starts. Another process may take the
// port in between; callers retry on a failed listen if that matters.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
