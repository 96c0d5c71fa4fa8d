package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/httpserver"
	"github.com/recording-storage/recording-storage/messages"
)

// closeMargin is how much longer than the drain (stages.drain_timeout, and
// the grace for a handler's verdict after it) a stopping service waits for
// its handlers before it gives up on them.
const closeMargin = verdictGrace + 5*time.Second

// Options configures a Service.
type Options struct {
	Config conf.Config
	// Stages to run; empty means all (conf.StageTable).
	Stages []string
	// Steps do the work of the stages.
	Steps handlers.Steps
	// Instances lists the instance domains the sweep covers.
	Instances func(ctx context.Context) ([]string, error)
	// Registry receives the router's and the pipeline's metrics; nil: none.
	Registry prometheus.Registerer
	Logger   logrus.FieldLogger
	// Now is the clock of the parse stage; nil: time.Now.
	Now func() time.Time
	// Retry is the in-process retry of failed handlers (its ShouldRetry is
	// replaced by the error class rule); zero: DefaultRetry.
	Retry middleware.Retry
}

// DefaultRetry retries a failed handler 3 times in the process, after 1, 2
// and 4 seconds (with jitter), before the message is Nacked.
func DefaultRetry() middleware.Retry {
	return middleware.Retry{MaxRetries: 3, InitialInterval: time.Second, MaxInterval: 10 * time.Second,
		Multiplier: 2, RandomizationFactor: 0.3}
}

// Service runs the selected stages of the pipeline in this process.
type Service struct {
	opts      Options
	transport *Transport
	router    *message.Router
	stages    []string
	counters  *counters
	queues    *queueMetrics   // nil: no registry, or no SQS
	onSweep   func(time.Time) // records a sweep; nil: no registry or no sweep
	publisher message.Publisher
	outputs   message.Publisher             // publisher, with Watermill's publish metrics
	handlers  map[string][]*message.Handler // by stage; filled by New, read-only afterwards

	running     chan struct{} // closed once Run runs the router (if it has handlers) and the sweep
	runningOnce sync.Once
	active      atomic.Bool // Run is running
	sweepDone   atomic.Bool // the sweep returned
}

// New sets up the transport (topics and queues) and a router with one
// handler per selected stage.
func New(ctx context.Context, opts Options) (*Service, error) {
	stages, err := selectStages(opts.Stages)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	wlog := NewWatermillLogger(log)
	t, err := NewTransport(ctx, opts.Config, wlog)
	if err != nil {
		return nil, err
	}
	if opts.Config.Stages.CreateResources {
		if err := t.Setup(ctx); err != nil {
			return nil, fmt.Errorf("cannot set up the %s transport: %w", t.Kind(), err)
		}
	} else if err := t.Lookup(ctx, stages); err != nil {
		return nil, fmt.Errorf("cannot use the %s transport: %w", t.Kind(), err)
	}
	pub, err := t.Publisher()
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: opts.Config.Stages.DrainTimeout + closeMargin}, wlog)
	if err != nil {
		return nil, err
	}
	s := &Service{opts: opts, transport: t, router: router, stages: stages, publisher: pub, outputs: pub,
		handlers: map[string][]*message.Handler{}, running: make(chan struct{})}
	if s.counters, err = newCounters(opts.Registry); err != nil {
		return nil, err
	}
	s.counters.start(stages)
	if slices.Contains(stages, conf.StageSweep) && opts.Registry != nil {
		if s.onSweep, err = newSweepGauges(opts.Registry, opts.Config.Sharer.Interval); err != nil {
			return nil, err
		}
	}
	if _, ok := t.backend.(*awsBackend); ok && opts.Registry != nil {
		if s.queues, err = newQueueMetrics(opts.Registry); err != nil {
			return nil, err
		}
	}
	// Outermost first: the correlation id reaches every output message; the
	// visibility of a message is kept while anything below (retries too)
	// runs; the metrics observe the whole handling.
	router.AddMiddleware(middleware.CorrelationID)
	if opts.Registry != nil {
		mb := metrics.NewPrometheusMetricsBuilder(opts.Registry, "recording_storage", "")
		mb.AddPrometheusRouterMetrics(router)
		if s.outputs, err = mb.DecoratePublisher(pub); err != nil {
			return nil, err
		}
	}
	for _, st := range stages {
		d, _ := conf.LookupStage(st) // selected: declared
		if err := s.addStage(d); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// selectStages checks a stage list; empty means all.
func selectStages(list []string) ([]string, error) {
	all := conf.StageNames()
	if len(list) == 0 {
		return all, nil
	}
	var out []string
	for _, st := range list {
		st = strings.TrimSpace(st)
		if !slices.Contains(all, st) {
			return nil, errclass.AsPermanent(fmt.Errorf("unknown stage %q (stages: %s)", st, strings.Join(all, ",")))
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// addStage registers a handler for each input of stage d (none for the
// sweep: see Run), with the stage's workers and failure handling, that
// publishes its results to the stage's output.
func (s *Service) addStage(d conf.StageDecl) error {
	st := s.opts.Config.Stages
	froms, err := s.transport.Input(d.Name)
	if err != nil {
		return err
	}
	deps := handlers.Deps{Steps: s.opts.Steps, Now: s.opts.Now, RemoveSource: s.opts.Config.S3.RemoveAfterTransfer,
		Keys: s.counters.keys, Logger: s.opts.Logger}
	for i, in := range d.Inputs {
		h, err := handlers.New(in.Handler, deps)
		if err != nil {
			return fmt.Errorf("stage %s: %w", d.Name, err)
		}
		from, out := froms[i], d.Output(st)
		err = s.register(d, func(sub message.Subscriber) *message.Handler {
			return s.router.AddConsumerHandler(in.Handler, from, sub, s.publishing(out, h))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// publishing runs h and publishes its results to topic itself, within the
// stage's failure handling: a result that cannot be published (a missing
// permission, a correlation id that makes it too big) is a failure of the
// delivery, classified, retried and poisoned like any other. (The router
// would publish after the handling and Nack the message on failure, for
// ever and uncounted.)
func (s *Service) publishing(topic string, h message.HandlerFunc) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		out, err := h(msg)
		if err != nil || len(out) == 0 {
			return err
		}
		id := middleware.MessageCorrelationID(msg)
		for _, o := range out {
			middleware.SetCorrelationID(id, o)
			o.SetContext(msg.Context()) // for the publish metrics' handler label
		}
		if err := s.outputs.Publish(topic, out...); err != nil {
			return fmt.Errorf("cannot publish the result to %s: %w", topic, err)
		}
		return nil
	}
}

// register creates the stage's subscriber, adds the handler with it and
// gives the handler the stage's failure handling.
func (s *Service) register(d conf.StageDecl, add func(message.Subscriber) *message.Handler) error {
	sub, err := s.transport.Subscriber(d.Name, d.Workers(s.opts.Config.Stages))
	if err != nil {
		return err
	}
	f := s.failures(d)
	mws, err := f.Middlewares()
	if err != nil {
		return err
	}
	rh := add(sub)
	// Outside the failure handling, so that the message stays hidden
	// while it retries, for as long as its attempts may take.
	rh.AddMiddleware(s.transport.KeepVisibleFor(f.Budget()))
	rh.AddMiddleware(mws...)
	s.handlers[d.Name] = append(s.handlers[d.Name], rh)
	return nil
}

// failures returns the failure handling of stage d.
func (s *Service) failures(d conf.StageDecl) Failures {
	st := s.opts.Config.Stages
	return Failures{
		Stage: d.Name, Poison: s.publisher, PoisonTopic: st.Poison, MaxDeliveries: st.MaxDeliveries, Timeout: d.Timeout(st),
		Deliveries: Deliveries, Retry: s.retry(),
		OnPoison: s.counters.poisoned, OnRetry: s.counters.retried,
		Logger: s.opts.Logger,
	}
}

// retry returns the configured in-process retry.
func (s *Service) retry() middleware.Retry {
	if s.opts.Retry.MaxRetries == 0 && s.opts.Retry.InitialInterval == 0 {
		return DefaultRetry()
	}
	return s.opts.Retry
}

// Run runs the handlers (and the sweep, when selected) until ctx is done,
// then stops taking messages and waits a bounded time for those in flight.
func (s *Service) Run(ctx context.Context) error {
	s.active.Store(true)
	defer s.active.Store(false)
	g, gctx := errgroup.WithContext(ctx)
	if len(s.handlers) == 0 {
		s.runningOnce.Do(func() { close(s.running) }) // the sweep alone: nothing to wait for
	} else {
		g.Go(func() error {
			select {
			case <-s.router.Running():
				s.runningOnce.Do(func() { close(s.running) })
			case <-gctx.Done():
			}
			return nil
		})
		g.Go(func() error {
			if err := s.router.Run(gctx); err != nil {
				return fmt.Errorf("router stopped: %w", err)
			}
			if ctx.Err() == nil {
				return errors.New("router stopped")
			}
			return nil
		})
	}
	if b, ok := s.transport.backend.(*awsBackend); ok && s.queues != nil {
		g.Go(func() error {
			b.watchQueues(gctx, s.stages, s.queues)
			return nil
		})
	}
	if slices.Contains(s.stages, conf.StageSweep) {
		sweep, _ := conf.LookupStage(conf.StageSweep)
		sw := handlers.Sweep{Instances: s.opts.Instances, Interval: s.opts.Config.Sharer.Interval, Logger: s.opts.Logger,
			Done: s.onSweep,
			Publish: func(msgs ...*message.Message) error {
				return s.publisher.Publish(sweep.Output(s.opts.Config.Stages), msgs...)
			}}
		g.Go(func() error {
			defer s.sweepDone.Store(true)
			return sw.Run(gctx)
		})
	}
	err := g.Wait()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Running returns a channel closed once the service runs: its router, when
// it has handlers (a process running only the sweep has none), and the
// sweep, when selected.
func (s *Service) Running() chan struct{} { return s.running }

// StageDown reports whether the stage is not working: Run is not running,
// the router (when there are handlers) is not running, one of the stage's
// handlers stopped (its subscription ended), or, for the sweep, the sweep
// returned.
func (s *Service) StageDown(stage string) bool {
	if !s.active.Load() {
		return true
	}
	if len(s.handlers) > 0 && (!s.router.IsRunning() || s.router.IsClosed()) {
		return true
	}
	if stage == conf.StageSweep && s.sweepDone.Load() {
		return true
	}
	for _, h := range s.handlers[stage] {
		select {
		case <-h.Stopped():
			return true
		default:
		}
	}
	return false
}

// StageChecks are the health checks of the stages this service runs
// (liveness checks: see httpserver.Check.Live), named
// as the original service named its workers: worker_error_<worker>, the
// transfer stage's being the original's worker_error_file_transferer.
func (s *Service) StageChecks() []httpserver.Check {
	var checks []httpserver.Check
	for _, st := range s.stages {
		d, _ := conf.LookupStage(st)
		checks = append(checks, httpserver.Check{Name: d.Health(), Live: true, Func: func(context.Context) error {
			if s.StageDown(st) {
				return fmt.Errorf("stage %s is not running", st)
			}
			return nil
		}})
	}
	return checks
}

// TransportChecks are the health checks of the transport (aws only; none
// for memory): sqs_error, the queues the service's stages read, or, for a
// process whose stages read none (the sweep's), sns_error, the topics it
// publishes to.
func (s *Service) TransportChecks() []httpserver.Check {
	if s.opts.Config.Stages.Transport != conf.TransportAWS {
		return nil
	}
	readsQueues := false
	for _, st := range s.stages {
		d, _ := conf.LookupStage(st)
		readsQueues = readsQueues || d.Handles()
	}
	if readsQueues {
		return []httpserver.Check{{Name: "sqs_error", Func: func(ctx context.Context) error {
			return s.transport.QueuesReachable(ctx, s.stages)
		}}}
	}
	return []httpserver.Check{{Name: "sns_error", Func: func(ctx context.Context) error {
		return s.transport.TopicsReachable(ctx, s.stages)
	}}}
}

// Stages returns the stages this service runs.
func (s *Service) Stages() []string { return s.stages }

// Close stops the router and releases the transport. Handlers that have
// not returned by the end of the drain and its margin are left behind with
// a warning, not an error: their messages are released already, and the
// process may end.
func (s *Service) Close() error {
	err := s.router.Close()
	// Watermill reports the timeout with this text only.
	if err != nil && s.router.IsClosed() && strings.Contains(err.Error(), "close timeout") {
		s.opts.Logger.WithError(err).Warn("handlers still running at the end of the drain are left behind; their messages were released")
		err = nil
	}
	return errors.Join(err, s.publisher.Close(), s.transport.Close())
}

// counters are the pipeline's own metrics beside Watermill's.
type counters struct {
	poisonedTotal *prometheus.CounterVec
	retriesTotal  *prometheus.CounterVec
	keysTotal     *prometheus.CounterVec
}

func newCounters(reg prometheus.Registerer) (*counters, error) {
	c := &counters{
		poisonedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recording_storage_poisoned_total",
			Help: "Messages moved to the poison queue, by stage and error class."}, []string{"stage", "class"}),
		retriesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recording_storage_retries_total",
			Help: "In-process retries of failed handlers, by stage."}, []string{"stage"}),
		keysTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recording_storage_file_keys_total",
			Help: "File keys handed to room members, in (user, file) pairs, by trigger (transfer or sweep) and outcome (set, skipped, failed)."},
			[]string{"trigger", "outcome"}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{c.poisonedTotal, c.retriesTotal, c.keysTotal} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// start creates the series of the stages with 0, so that they are on
// /metrics (and rules see their increase) before the first event.
func (c *counters) start(stages []string) {
	for _, st := range stages {
		if d, _ := conf.LookupStage(st); !d.Handles() {
			continue
		}
		c.retriesTotal.WithLabelValues(st)
		for _, class := range []errclass.Class{errclass.Permanent, errclass.Transient, errclass.Unknown} {
			c.poisonedTotal.WithLabelValues(st, class.String())
		}
	}
	if slices.Contains(stages, conf.StageShare) {
		for _, trigger := range []string{"transfer", "sweep"} {
			for _, outcome := range []string{"set", "skipped", "failed"} {
				c.keysTotal.WithLabelValues(trigger, outcome)
			}
		}
	}
}

// newSweepGauges registers the sweep's gauges: its interval, and when the
// last sweep whose requests were all published started; it returns what
// records a sweep.
func newSweepGauges(reg prometheus.Registerer, interval time.Duration) (func(time.Time), error) {
	intervalGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "recording_storage_sweep_interval_seconds",
		Help: "The sweep's interval (sharer.interval)."})
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "recording_storage_sweep_last_success_timestamp_seconds",
		Help: "When the last sweep whose share requests were all published started, in seconds since the epoch; 0: none yet."})
	for _, c := range []prometheus.Collector{intervalGauge, last} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cannot register the sweep metrics: %w", err)
		}
	}
	intervalGauge.Set(interval.Seconds())
	return func(t time.Time) { last.Set(float64(t.UnixNano()) / 1e9) }, nil
}

func (c *counters) poisoned(stage string, class errclass.Class) {
	c.poisonedTotal.WithLabelValues(stage, class.String()).Inc()
}

func (c *counters) retried(stage string) { c.retriesTotal.WithLabelValues(stage).Inc() }

func (c *counters) keys(sweep bool, st messages.KeyStats) {
	trigger := "transfer"
	if sweep {
		trigger = "sweep"
	}
	c.keysTotal.WithLabelValues(trigger, "set").Add(float64(st.Set))
	c.keysTotal.WithLabelValues(trigger, "skipped").Add(float64(st.Skipped))
	c.keysTotal.WithLabelValues(trigger, "failed").Add(float64(st.Failed))
}

// Transport returns the service's transport.
func (s *Service) Transport() *Transport { return s.transport }
