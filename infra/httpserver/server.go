// Package httpserver is the service's small HTTP server for operators: the
// health check that monitors and load balancers probe (GET /healthcheck, in
// the original service's JSON shape), the liveness and readiness probes of
// Kubernetes (GET /livez, GET /readyz) and the Prometheus metrics (GET
// /metrics).
//
// Health checks run in the background; a probe answers from the last results,
// so probes are cheap and never pile up on slow dependencies.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
)

// Defaults for zero values in Config.
const (
	DefaultListen          = conf.DefaultHTTPListen
	DefaultCheckInterval   = 30 * time.Second
	DefaultCheckTimeout    = 5 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// Timeouts of the HTTP server itself. Operators' requests are small; these
// only bound misbehaving clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Check is one health check: a dependency or a pipeline stage that must be
// working for the service to report success.
//
// Name is the error code that GET /healthcheck reports while the check
// fails. Naming rule: the transfer stage keeps the original service's
// "worker_error_file_transferer"; other stages are "worker_error_<stage>"
// (for example "worker_error_parser"); dependencies are "<component>_error"
// (for example "sqs_error", "s3_error", "dracoon_error",
// "configurator_error"). The name is sent to unauthenticated clients, so it
// must not carry anything secret.
//
// Func returns nil when the checked thing works. It gets a context that ends
// after Config.CheckTimeout and must return when it is done; a check still
// running then counts as failed. Func is never called concurrently with
// itself, and its error is logged (with URL credentials and query strings
// removed) but never sent to clients.
//
// Live marks a check of the process itself (a stage's handlers running),
// not of a dependency: GET /livez fails only while a Live check fails, GET
// /readyz and GET /healthcheck while any check fails.
type Check struct {
	Name string
	Func func(ctx context.Context) error
	Live bool
}

// Config configures a Server.
type Config struct {
	// Listen is the host:port to listen on; zero means DefaultListen. Port 0
	// picks a free port (see Server.Addr).
	Listen string
	// Checks are reported by GET /healthcheck; the first failing one, in
	// this order, names the error. No checks means always healthy once started.
	Checks []Check
	// CheckInterval is how often the checks run in the background; zero
	// means DefaultCheckInterval.
	CheckInterval time.Duration
	// CheckTimeout bounds one run of one check; zero means DefaultCheckTimeout.
	CheckTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown when Run's context ends;
	// zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Registry is exposed on GET /metrics; register the routers' metrics on
	// it (see Server.Registry). Nil means a new registry. The Go and process
	// collectors are added to it unless already registered.
	Registry *prometheus.Registry
	// Logger receives health state changes and server errors; nil discards them.
	Logger logrus.FieldLogger
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
}

// Validate reports every problem in c, each with its field path.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); c.Listen != "" && err != nil {
		errs = append(errs, fmt.Errorf("httpserver.Config.Listen %q: %w", c.Listen, err))
	}
	if c.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("httpserver.Config.CheckInterval %s is negative", c.CheckInterval))
	}
	if c.CheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("httpserver.Config.CheckTimeout %s is negative", c.CheckTimeout))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("httpserver.Config.ShutdownTimeout %s is negative", c.ShutdownTimeout))
	}
	seen := make(map[string]bool, len(c.Checks))
	for i, ch := range c.Checks {
		switch {
		case ch.Name == "":
			errs = append(errs, fmt.Errorf("httpserver.Config.Checks[%d].Name is empty", i))
		case ch.Name == errStarting:
			errs = append(errs, fmt.Errorf("httpserver.Config.Checks[%d].Name %q is reserved", i, ch.Name))
		case seen[ch.Name]:
			errs = append(errs, fmt.Errorf("httpserver.Config.Checks[%d].Name %q is a duplicate", i, ch.Name))
		}
		seen[ch.Name] = true
		if ch.Func == nil {
			errs = append(errs, fmt.Errorf("httpserver.Config.Checks[%d].Func is nil", i))
		}
	}
	return errors.Join(errs...)
}

// Server serves /healthcheck and /metrics. Build it with New and start it
// with Run.
type Server struct {
	cfg     Config
	log     logrus.FieldLogger
	ln      net.Listener
	srv     *http.Server
	up      *prometheus.GaugeVec
	health  atomic.Pointer[healthStatus] // nil until the first round of checks completes
	failing []bool                       // per check, as of its last run; owned by the check loop
	busy    []atomic.Bool                // per check, true while its Func runs
	started atomic.Bool

	connMu   sync.Mutex
	newConns map[net.Conn]struct{} // connections that have not sent a request yet
	closing  bool                  // shutdown began: close connections before their first request
}

// New validates cfg and binds its listen address, so that a busy port is
// reported before anything else starts. Call Run to serve; the address stays
// bound until Run returns.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	cfg.Checks = append([]Check(nil), cfg.Checks...)
	s := &Server{cfg: cfg, log: cfg.Logger, failing: make([]bool, len(cfg.Checks)),
		busy: make([]atomic.Bool, len(cfg.Checks))}

	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "recording_storage_healthcheck_up",
		Help: "1 when the named health check passed its last run, 0 otherwise.",
	}, []string{"check"})
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		up,
	} {
		existing, err := register(cfg.Registry, c)
		if err != nil {
			return nil, fmt.Errorf("cannot register metrics: %w", err)
		}
		if c == up {
			gv, ok := existing.(*prometheus.GaugeVec)
			if !ok {
				return nil, errors.New("cannot register metrics: recording_storage_healthcheck_up is registered with another type")
			}
			s.up = gv
		}
	}
	for _, c := range cfg.Checks {
		s.up.WithLabelValues(c.Name).Set(0)
	}

	mux := http.NewServeMux()
	// A GET pattern also matches HEAD; other methods get 405 with an Allow
	// header, and unknown paths (including /) get 404.
	mux.HandleFunc("GET /healthcheck", s.serveHealth)
	mux.HandleFunc("GET /livez", s.serveLive)
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{s.log},
		Registry: cfg.Registry,
	}))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(logWriter{s.log}, "", 0),
		ConnState:         s.trackConn,
	}
	s.newConns = make(map[net.Conn]struct{})
	return s, nil
}

// register registers c on reg and returns the collector in use: c, or the
// one already registered under the same descriptors.
func register(reg prometheus.Registerer, c prometheus.Collector) (prometheus.Collector, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return are.ExistingCollector, nil
	}
	return c, err
}

// Addr returns the address the server is bound to, with the port chosen
// when Config.Listen asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Registry returns the Prometheus registry that GET /metrics exposes. Pass it
// to watermill's metrics.NewPrometheusMetricsBuilder and call
// AddPrometheusRouterMetrics to expose a router's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// Run runs the health checks and serves HTTP until ctx is done, then shuts
// down gracefully, waiting at most Config.ShutdownTimeout for requests in
// flight. It returns nil after a graceful shutdown and an error if serving
// fails or the shutdown runs out of time. Run may be called only once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("httpserver: Run called more than once")
	}
	checksCtx, stopChecks := context.WithCancel(ctx)
	var checks sync.WaitGroup
	checks.Go(func() { s.checkLoop(checksCtx) })
	defer func() {
		stopChecks()
		checks.Wait() // bounded: a round returns once checksCtx is done
	}()

	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	s.log.WithField("addr", s.Addr()).Info("http server listening")

	select {
	case err := <-served:
		return fmt.Errorf("cannot serve http on %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	stopChecks()
	s.closeNewConns()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
		<-served
		return fmt.Errorf("cannot shut down http server on %s within %s: %w", s.Addr(), s.cfg.ShutdownTimeout, err)
	}
	<-served // http.ErrServerClosed, at once after Shutdown began
	return nil
}

// trackConn records the connections that have not sent a request yet, and
// closes them once shutdown began.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if state != http.StateNew {
		delete(s.newConns, c)
		return
	}
	if s.closing {
		_ = c.Close()
		return
	}
	s.newConns[c] = struct{}{}
}

// closeNewConns closes the connections that have not sent a request, such
// as a load balancer's or a client's spare ones. http.Server.Shutdown would
// wait five seconds for each to send one.
func (s *Server) closeNewConns() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.closing = true
	for c := range s.newConns {
		_ = c.Close()
		delete(s.newConns, c)
	}
}

// logWriter turns the http.Server's error log lines into warnings.
type logWriter struct{ log logrus.FieldLogger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn("http server: " + redact(strings.TrimSpace(string(p))))
	return len(p), nil
}

// promLogger turns promhttp's gathering errors into errors in our log.
type promLogger struct{ log logrus.FieldLogger }

func (l promLogger) Println(v ...any) {
	l.log.Error("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
