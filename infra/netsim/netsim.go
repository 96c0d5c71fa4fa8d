// Package netsim puts a simulated wide-area link between a client and a
// server on this machine: a TCP proxy on 127.0.0.1 that adds a latency to
// each direction and caps the bandwidth of each connection, as a server
// across the internet would. It embeds toxiproxy
// (github.com/Shopify/toxiproxy/v2) as a library, so no separate process or
// download is needed. It is for benchmarks and tests.
package netsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
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
type Link struct {
	proxy    *toxiproxy.Proxy
	registry *prometheus.Registry
}

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
	reg := prometheus.NewRegistry()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(reg), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	if err := reg.Register(srv.Metrics.ProxyMetrics.SentBytesTotal); err != nil {
		return nil, err
	}
	proxy := toxiproxy.NewProxy(srv, "netsim", listen, upstream)
	// Toxics are set before the first connection: links copy the chain
	// when they start.
	for _, stream := range []string{"upstream", "downstream"} {
		if p.Latency > 0 {
			if err := addToxic(proxy, "latency_"+stream, "latency", stream,
				map[string]int64{"latency": p.Latency.Milliseconds()}); err != nil {
				return nil, err
			}
		}
		if p.Bandwidth > 0 {
			// toxiproxy's rate is in kB/s (1000 bytes).
			if err := addToxic(proxy, "bandwidth_"+stream, "bandwidth", stream,
				map[string]int64{"rate": p.Bandwidth / 1000}); err != nil {
				return nil, err
			}
		}
	}
	if err := proxy.Start(); err != nil {
		return nil, fmt.Errorf("netsim: cannot listen on %s: %w", listen, err)
	}
	return &Link{proxy: proxy, registry: reg}, nil
}

func addToxic(proxy *toxiproxy.Proxy, name, typ, stream string, attrs map[string]int64) error {
	raw, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0,
		"attributes": attrs})
	if err != nil {
		return err
	}
	if _, err := proxy.Toxics.AddToxicJson(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("netsim: cannot add toxic %s: %w", name, err)
	}
	return nil
}

// Addr is the host:port the link listens on.
func (l *Link) Addr() string { return l.proxy.Listen }

// URL is http://Addr.
func (l *Link) URL() string { return "http://" + l.Addr() }

// Sent returns the bytes the link has delivered to the upstream server
// (up) and to its clients (down), counted when a connection closes:
// connections still open are not included.
func (l *Link) Sent() (up, down int64) {
	mfs, err := l.registry.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() != "direction" {
					continue
				}
				switch v := int64(m.GetCounter().GetValue()); lp.GetValue() {
				case "upstream":
					up += v
				case "downstream":
					down += v
				}
			}
		}
	}
	return up, down
}

// Close stops listening and closes every relayed connection.
func (l *Link) Close() error {
	l.proxy.Stop()
	return nil
}

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
