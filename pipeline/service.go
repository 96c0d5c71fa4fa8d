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
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/httpserver"
)

// closeMargin is how much longer than the drain (stages.drain_timeout, and
// the grace for a handler's verdict after it) a stopping service waits for
// its handlers before it gives up on them.
const closeMargin = verdictGrace + 5*time.Second

// Options configures a Service.
type Options struct {
	Config conf.Config
	// Stages to run; empty means all (handlers.AllStages).
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
	if slices.Contains(stages, handlers.StageSweep) && opts.Registry != nil {
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
		if err := s.addStage(st); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// selectStages checks a stage list; empty means all.
func selectStages(list []string) ([]string, error) {
	all := handlers.AllStages()
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

// addStage registers the handlers of one stage.
func (s *Service) addStage(stage string) error {
	cfg := s.opts.Config
	st := cfg.Stages
	steps := s.opts.Steps
	switch stage {
	case handlers.StageParse:
		return s.add(stage, stage, st.Parse.Workers, stageOutput(st, stage), handlers.Parse{Now: s.opts.Now}.Handle)
	case handlers.StageResolve:
		return s.add(stage, stage, st.Resolve.Workers, stageOutput(st, stage), handlers.Resolve{Steps: steps}.Handle)
	case handlers.StageRooms:
		return s.add(stage, stage, st.Rooms.Workers, stageOutput(st, stage), handlers.Rooms{Steps: steps}.Handle)
	case handlers.StageTransfer:
		return s.add(stage, stage, st.Transfer.Workers, stageOutput(st, stage),
			handlers.Transfer{Steps: steps, RemoveSource: cfg.S3.RemoveAfterTransfer}.Handle)
	case handlers.StageShare:
		// Files of transferred jobs, read from the announcement topic, and
		// share requests (the sweep's), read from the share topic.
		if err := s.addConsumer(stage, "share-transferred", st.Transferred, st.Share.Workers,
			handlers.ShareTransferred{Steps: steps, Keys: s.counters.keys}.Handle); err != nil {
			return err
		}
		return s.addConsumer(stage, "share-requested", st.Share.Topic, st.Share.Workers,
			handlers.ShareRequested{Steps: steps, Keys: s.counters.keys, Sweeps: handlers.NewSweeps(),
				Logger: s.opts.Logger}.Handle)
	case handlers.StageSweep:
		return nil // see Run
	}
	return fmt.Errorf("no handler for stage %q", stage)
}

// add registers a handler of stage that reads the stage's input and
// publishes its results to out.
func (s *Service) add(stage, name string, workers int, out string, h message.HandlerFunc) error {
	in, err := s.transport.Input(stage)
	if err != nil {
		return err
	}
	return s.register(stage, workers, func(sub message.Subscriber) *message.Handler {
		return s.router.AddConsumerHandler(name, in, sub, s.publishing(out, h))
	})
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

// addConsumer registers a handler of stage that reads topic and publishes
// nothing.
func (s *Service) addConsumer(stage, name, topic string, workers int, h message.NoPublishHandlerFunc) error {
	return s.register(stage, workers, func(sub message.Subscriber) *message.Handler {
		return s.router.AddConsumerHandler(name, topic, sub, h)
	})
}

// register creates the stage's subscriber, adds the handler with it and
// gives the handler the stage's failure handling.
func (s *Service) register(stage string, workers int, add func(message.Subscriber) *message.Handler) error {
	sub, err := s.transport.Subscriber(stage, workers)
	if err != nil {
		return err
	}
	f := s.failures(stage)
	mws, err := f.Middlewares()
	if err != nil {
		return err
	}
	rh := add(sub)
	// Outside the failure handling, so that the message stays hidden
	// while it retries, for as long as its attempts may take.
	rh.AddMiddleware(s.transport.KeepVisibleFor(f.Budget()))
	rh.AddMiddleware(mws...)
	s.handlers[stage] = append(s.handlers[stage], rh)
	return nil
}

// failures returns the failure handling of stage.
func (s *Service) failures(stage string) Failures {
	st := s.opts.Config.Stages
	timeout, _ := st.StageTimeout(stage)
	return Failures{
		Stage: stage, Poison: s.publisher, PoisonTopic: st.Poison, MaxDeliveries: st.MaxDeliveries, Timeout: timeout,
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
	if slices.Contains(s.stages, handlers.StageSweep) {
		sw := handlers.Sweep{Instances: s.opts.Instances, Interval: s.opts.Config.Sharer.Interval, Logger: s.opts.Logger,
			Done: s.onSweep,
			Publish: func(msgs ...*message.Message) error {
				return s.publisher.Publish(stageOutput(s.opts.Config.Stages, handlers.StageSweep), msgs...)
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
	if stage == handlers.StageSweep && s.sweepDone.Load() {
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
	workers := map[string]string{
		handlers.StageParse: "parser", handlers.StageResolve: "resolver", handlers.StageRooms: "room_creator",
		handlers.StageTransfer: "file_transferer", handlers.StageShare: "sharer", handlers.StageSweep: "global_sharer",
	}
	var checks []httpserver.Check
	for _, st := range s.stages {
		checks = append(checks, httpserver.Check{Name: "worker_error_" + workers[st], Live: true, Func: func(context.Context) error {
			if s.StageDown(st) {
				return fmt.Errorf("stage %s is not running", st)
			}
			return nil
		}})
	}
	return checks
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
		if st == handlers.StageSweep {
			continue
		}
		c.retriesTotal.WithLabelValues(st)
		for _, class := range []errclass.Class{errclass.Permanent, errclass.Transient, errclass.Unknown} {
			c.poisonedTotal.WithLabelValues(st, class.String())
		}
	}
	if slices.Contains(stages, handlers.StageShare) {
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

func (c *counters) keys(sweep bool, st dracoon.KeyStats) {
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
