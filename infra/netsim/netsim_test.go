package netsim

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// serve accepts connections on 127.0.0.1 until the test ends and handles
// each with handle, which owns the connection; it returns the address.
func serve(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// sink answers one byte per byte "p" it reads and discards everything else.
func sink(t *testing.T) string {
	return serve(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			for _, b := range buf[:n] {
				if b == 'p' {
					_, _ = c.Write([]byte{'p'})
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// open starts a link to upstream through p and dials it; both are closed
// when the test ends.
func open(t *testing.T, upstream string, p Profile) (*Link, net.Conn) {
	t.Helper()
	l, err := Start("127.0.0.1:0", upstream, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c
}

// TestLink: a round trip takes twice the latency, and a connection moves no
// faster than the bandwidth.
func TestLink(t *testing.T) {
	t.Parallel()
	p := Profile{Latency: 20 * time.Millisecond, Bandwidth: 10_000_000}
	l, c := open(t, sink(t), p)

	start := time.Now()
	if _, err := c.Write([]byte{'p'}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*p.Latency || rtt > 2*p.Latency+time.Second {
		t.Errorf("round trip %s, want about %s", rtt, 2*p.Latency)
	}

	// 2 MB, then a ping behind it: the answer comes after the data went
	// through at 10 MB/s (0.2 s).
	const n = 2_000_000
	start = time.Now()
	data := make([]byte, n)
	data[n-1] = 'p'
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	want := time.Duration(float64(n) / float64(p.Bandwidth) * float64(time.Second))
	if d := time.Since(start); d < want*9/10 || d > want*5 {
		t.Errorf("%d bytes took %s, want about %s", n, d, want)
	}

	// Everything delivered is counted, the connection closed.
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		up, down := l.Sent()
		if up == n+1 && down == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Sent() = %d, %d; want %d, 2", up, down, n+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStart_refuses_bad_profiles(t *testing.T) {
	t.Parallel()
	for _, p := range []Profile{{Latency: -1}, {Bandwidth: -1}, {Bandwidth: 999}} {
		if l, err := Start("127.0.0.1:0", "127.0.0.1:1", p); err == nil {
			l.Close()
			t.Errorf("%+v: no error", p)
		}
	}
}

func TestWAN(t *testing.T) {
	t.Parallel()
	if got := WAN.String(); got != "25ms each way, 40 MB/s per connection" {
		t.Errorf("WAN = %q", got)
	}
}

// echo writes back what it reads.
func echo(t *testing.T) string {
	return serve(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// TestLink_relays_bytes_in_order: what goes through both directions comes
// back byte for byte, and the end of the client's stream reaches the server
// (half close) so its answer ends too.
func TestLink_relays_bytes_in_order(t *testing.T) {
	t.Parallel()
	for _, p := range []Profile{{}, {Latency: 5 * time.Millisecond}, {Latency: time.Millisecond, Bandwidth: 200_000_000}} {
		l, c := open(t, echo(t), p)
		data := make([]byte, 3<<20+7)
		for i := range data {
			data[i] = byte(i*7 + i>>11)
		}
		go func() {
			_, _ = c.Write(data)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%v: %d bytes back, differing from the %d sent", p, len(got), len(data))
		}
		if up, down := l.Sent(); up != int64(len(data)) || down != int64(len(data)) {
			t.Errorf("%v: Sent() = %d, %d; want %d both", p, up, down, len(data))
		}
	}
}

// TestLink_Close_ends_connections: Close ends the connections it relays,
// and a connection whose server cannot be reached is closed.
func TestLink_Close_ends_connections(t *testing.T) {
	t.Parallel()
	l, c := open(t, echo(t), Profile{Latency: time.Millisecond})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after Close: %v, want the connection closed", err)
	}

	down, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, c2 := open(t, down, Profile{})
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read with the server down: %v, want the connection closed", err)
	}
}

// TestLink_pushes_back: a server that stops reading stops the client's
// writes after a bounded amount (the relay holds back at most relayHeld,
// the kernel's socket buffers the rest), instead of buffering without end.
func TestLink_pushes_back(t *testing.T) {
	t.Parallel()
	stalled := serve(t, func(net.Conn) { <-t.Context().Done() }) // never reads
	_, c := open(t, stalled, Profile{Latency: time.Millisecond, Bandwidth: 1_000_000_000})
	block := make([]byte, 1<<20)
	var written int64
	for written < 1<<30 {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Write(block)
		written += int64(n)
		if err != nil {
			break
		}
	}
	if limit := int64(4<<20 + 64<<20); written > limit { // relayHeld(p) is 4 MiB
		t.Errorf("the client wrote %d MiB into a stalled link, want at most %d MiB", written>>20, limit>>20)
	}
}
