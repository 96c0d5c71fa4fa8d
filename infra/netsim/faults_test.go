package netsim

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// talker answers every byte it reads with size bytes (a request, a long
// answer), until the client closes.
func talker(t *testing.T, size int) string {
	return serve(t, func(c net.Conn) {
		answer := make([]byte, size)
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
}

// ask sends one byte on c and reads the answer of size bytes, giving up
// after within; it returns the bytes read and the error.
func ask(c net.Conn, size int, within time.Duration) (int, error) {
	_ = c.SetDeadline(time.Now().Add(within))
	if _, err := c.Write([]byte{'?'}); err != nil {
		return 0, err
	}
	return io.ReadFull(c, make([]byte, size))
}

// faultLink starts a link to upstream with faults f.
func faultLink(t *testing.T, upstream string, f Faults) *Link {
	t.Helper()
	l, err := Start("127.0.0.1:0", upstream, Profile{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	return l
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFaults_each: a reset breaks an answer mid-stream with a TCP reset; a
// stall delivers part of it and then nothing until the client gives up;
// without faults the answer comes whole. Each injected fault is counted.
func TestFaults_each(t *testing.T) {
	t.Parallel()
	const size, within = 1 << 20, 200_000
	tests := []struct {
		name    string
		faults  Faults
		check   func(t *testing.T, n int, err error)
		counted FaultCounts
	}{
		{name: "none", faults: Faults{Within: within},
			check: func(t *testing.T, n int, err error) {
				if err != nil || n != size {
					t.Fatalf("read %d bytes, %v; want the whole answer", n, err)
				}
			}},
		{name: "reset", faults: Faults{ResetRate: 1, Within: within}, counted: FaultCounts{Resets: 1},
			check: func(t *testing.T, n int, err error) {
				if !errors.Is(err, syscall.ECONNRESET) || n >= within {
					t.Fatalf("read %d bytes, %v; want a reset within %d bytes", n, err, within)
				}
			}},
		{name: "stall", faults: Faults{StallRate: 1, Within: within}, counted: FaultCounts{Stalls: 1},
			check: func(t *testing.T, n int, err error) {
				if !errors.Is(err, os.ErrDeadlineExceeded) || n >= within {
					t.Fatalf("read %d bytes, %v; want a timeout after fewer than %d bytes", n, err, within)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := faultLink(t, talker(t, size), tc.faults)
			c := dial(t, l.Addr())
			n, err := ask(c, size, 500*time.Millisecond)
			tc.check(t, n, err)
			c.Close()
			if got := l.Injected(); got != tc.counted {
				t.Errorf("Injected() = %v, want %v", got, tc.counted)
			}
			// A stalled connection ends once its client closed it: Close
			// does not wait for it.
			done := make(chan error, 1)
			go func() { done <- l.Close() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close still waits 5 s after the client closed")
			}
		})
	}
}

// TestFaults_forced: ResetNext and StallNext fault the next connections
// that reach their bytes, in order, without random faults; the one after
// is served whole.
func TestFaults_forced(t *testing.T) {
	t.Parallel()
	const size = 100_000
	l := faultLink(t, talker(t, size), Faults{})
	short := faultLink(t, talker(t, 500), Faults{})
	l.ResetNext(1000)
	l.StallNext(2000)
	// A connection to another link takes nothing.
	c := dial(t, short.Addr())
	if _, err := ask(c, 500, time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := short.Injected(); got != (FaultCounts{}) {
		t.Fatalf("another link injected %v", got)
	}
	for i, want := range []struct {
		n   int
		err error
	}{{1000, syscall.ECONNRESET}, {2000, os.ErrDeadlineExceeded}, {size, nil}} {
		c := dial(t, l.Addr())
		n, err := ask(c, size, 500*time.Millisecond)
		if n != want.n || !errors.Is(err, want.err) {
			t.Errorf("connection %d: read %d bytes, %v; want %d, %v", i, n, err, want.n, want.err)
		}
		c.Close()
	}
	if got := l.Injected(); got != (FaultCounts{Resets: 1, Stalls: 1}) {
		t.Errorf("Injected() = %v, want one reset and one stall", got)
	}
}

// TestFaults_seeded: connections opened one after another meet the same
// faults for the same seed, others for another seed, at about the rate.
func TestFaults_seeded(t *testing.T) {
	t.Parallel()
	const conns = 40
	upstream := talker(t, 64<<10)
	run := func(seed int64) string {
		l := faultLink(t, upstream, Faults{Seed: seed, ResetRate: 0.5, Within: 32 << 10})
		var b strings.Builder
		for range conns {
			c := dial(t, l.Addr())
			if _, err := ask(c, 64<<10, 5*time.Second); err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
			c.Close()
		}
		return b.String()
	}
	first, again, other := run(3), run(3), run(4)
	if first != again {
		t.Fatalf("seed 3 gave %s, then %s", first, again)
	}
	if first == other {
		t.Errorf("seeds 3 and 4 gave the same faults %s", first)
	}
	if n := strings.Count(first, "x"); n < conns/5 || n > conns*4/5 {
		t.Errorf("%d of %d connections reset at rate 0.5: %s", n, conns, first)
	}
}

// TestRefuse: a refusal resets the open connections, connecting fails with
// "connection refused" during it, and afterwards the link serves again on
// the same address.
func TestRefuse(t *testing.T) {
	t.Parallel()
	const size = 1000
	l := faultLink(t, talker(t, size), Faults{})
	addr := l.Addr()
	c := dial(t, addr)
	if _, err := ask(c, size, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const stretch = 400 * time.Millisecond
	start := time.Now()
	l.Refuse(stretch)
	if _, err := ask(c, size, 5*time.Second); err == nil {
		t.Fatal("a connection open at the refusal still answers")
	}
	if c2, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c2 != nil {
			c2.Close()
		}
		t.Fatalf("dial during the refusal: %v, want connection refused", err)
	}
	var c3 net.Conn
	for {
		var err error
		if c3, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Since(start) > stretch+5*time.Second {
			t.Fatalf("the link does not listen again: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c3.Close()
	if d := time.Since(start); d < stretch {
		t.Errorf("connecting worked again after %s, want %s", d, stretch)
	}
	if _, err := ask(c3, size, 5*time.Second); err != nil {
		t.Fatalf("after the refusal: %v", err)
	}
	if got := l.Injected(); got != (FaultCounts{Refusal: 1, Dropped: 1}) {
		t.Errorf("Injected() = %v, want one refusal that dropped one connection", got)
	}
}

func TestFaults_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f       Faults
		wantErr string
	}{
		{Faults{}, ""},
		{Faults{ResetRate: 0.3, StallRate: 0.3, Within: 10}, ""},
		{Faults{ResetRate: -0.1}, "reset rate"},
		{Faults{StallRate: 1.5}, "stall rate"},
		{Faults{ResetRate: 0.6, StallRate: 0.6}, "add up"},
		{Faults{Within: -1}, "Within"},
	}
	for _, tc := range tests {
		err := tc.f.Validate()
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.wantErr)
		}
	}
}
