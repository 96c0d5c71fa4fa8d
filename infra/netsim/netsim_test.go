package netsim

import (
	"io"
	"net"
	"testing"
	"time"
)

// sink accepts connections, answers one byte per byte "p" it reads, and
// discards everything else.
func sink(t *testing.T) string {
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
			}()
		}
	}()
	return ln.Addr().String()
}

// TestLink: a round trip takes twice the latency, and a connection moves no
// faster than the bandwidth.
func TestLink(t *testing.T) {
	t.Parallel()
	p := Profile{Latency: 20 * time.Millisecond, Bandwidth: 10_000_000}
	l, err := Start("127.0.0.1:0", sink(t), p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

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

	// Counted once the connection is closed.
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
