package transfer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// Metrics are the engine's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	readBytes     prometheus.Counter
	uploadedBytes prometheus.Counter
	inFlight      prometheus.Gauge
	duration      *prometheus.HistogramVec
}

// NewMetrics returns the engine's metrics, registered with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		readBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recording_storage_s3_read_bytes_total", Help: "Bytes read from S3 by transfers."}),
		uploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recording_storage_uploaded_bytes_total", Help: "Encrypted bytes uploaded to DRACOON, over all targets."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "recording_storage_transfers_in_flight", Help: "File transfers running now."}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recording_storage_transfer_duration_seconds",
			Help:    "Duration of file transfers (all targets of one file), by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14)}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.readBytes, m.uploadedBytes, m.inFlight, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) read(n int) {
	if m != nil {
		m.readBytes.Add(float64(n))
	}
}

func (m *Metrics) uploaded(n int) {
	if m != nil {
		m.uploadedBytes.Add(float64(n))
	}
}

func (m *Metrics) transferStarted() {
	if m != nil {
		m.inFlight.Inc()
	}
}

// transferDone records a finished transfer; its outcome is "ok" or the
// class of its error.
func (m *Metrics) transferDone(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	outcome := "ok"
	if err != nil {
		outcome = errclass.Of(err).String()
	}
	m.duration.WithLabelValues(outcome).Observe(d.Seconds())
}
