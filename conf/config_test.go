package conf_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
)

func noEnv(string) (string, bool) { return "", false }

// configFile writes content to a configuration file of the test and
// returns its path; "" for no content.
func configFile(t *testing.T, content string) string {
	t.Helper()
	if content == "" {
		return ""
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultFileMatchesDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := conf.Load("recording-storage.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := conf.Default(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("recording-storage.yaml and conf.Default() differ:\nfile:    %+v\ndefault: %+v", cfg, want)
	}
	if err := conf.Default().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestLoad_env_overrides(t *testing.T) {
	t.Parallel()
	cfg, err := conf.Load("", envMap(map[string]string{
		"RS_STAGES_TRANSFER_WORKERS":    "7",
		"RS_S3_CHUNK_SIZE":              "8MiB",
		"RS_S3_REMOVE_AFTER_TRANSFER":   "false",
		"RS_SHARER_INTERVAL":            "2m",
		"RS_AWS_ENDPOINTS_SQS":          "http://127.0.0.1:4100",
		"RS_AWS_SQS_PROTOCOL":           "query",
		"RS_AWS_ACCESS_KEY_ID":          "id",
		"RS_AWS_SECRET_ACCESS_KEY":      "very-secret",
		"RS_INSTANCES_CONFIGURATOR_URL": "https://configurator.example",
		"RS_INSTANCES_SOURCE":           "configurator",
		"RS_SHARER_INSTANCES":           "a.example,b.example",
		"RS_STAGES_TRANSPORT":           "memory",
		"RS_STAGES_PARSE_QUEUE":         "https://sqs.eu-central-1.amazonaws.com/123456789012/jobs",
		"RS_STAGES_RETRY_DELAY":         "3s",
		"RS_STAGES_TRANSFERRED":         "done",
		"RS_S3_PARTS_IN_FLIGHT":         "12",
		"RS_S3_MEMORY_BUDGET":           "2GiB",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stages.Transfer.Workers != 7 || cfg.S3.ChunkSize != 8<<20 || cfg.S3.RemoveAfterTransfer ||
		cfg.Sharer.Interval != 2*time.Minute || cfg.AWS.Endpoints.SQS != "http://127.0.0.1:4100" ||
		cfg.AWS.SQSProtocol != "query" || cfg.AWS.SecretAccessKey.Reveal() != "very-secret" ||
		cfg.Instances.Source != "configurator" || cfg.Stages.Transport != conf.TransportMemory ||
		cfg.Stages.Parse.Queue != "https://sqs.eu-central-1.amazonaws.com/123456789012/jobs" ||
		cfg.Stages.RetryDelay != 3*time.Second || cfg.Stages.Transferred != "done" ||
		cfg.S3.PartsInFlight != 12 || cfg.S3.MemoryBudget != 2<<30 {
		t.Errorf("overrides not applied: %+v", cfg)
	}
}

func TestLoad_file_then_env(t *testing.T) {
	t.Parallel()
	path := configFile(t, "stages:\n  parse:\n    workers: 3\n  rooms:\n    workers: 4\n")
	cfg, err := conf.Load("", envMap(map[string]string{"RS_CONFIG": path, "RS_STAGES_ROOMS_WORKERS": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stages.Parse.Workers != 3 || cfg.Stages.Rooms.Workers != 5 || cfg.Stages.Transfer.Workers != conf.DefaultTransferWorkers {
		t.Errorf("stages = %+v", cfg.Stages)
	}
}

func TestLoad_rejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{name: "zero_workers", env: map[string]string{"RS_STAGES_TRANSFER_WORKERS": "0"}, want: []string{"stages.transfer.workers must be >= 1 and <= 1000, got 0"}},
		{name: "not_an_integer", env: map[string]string{"RS_STAGES_PARSE_WORKERS": "many"}, want: []string{`RS_STAGES_PARSE_WORKERS (stages.parse.workers): "many" is not an integer`}},
		{name: "bad_duration", env: map[string]string{"RS_SHARER_INTERVAL": "hourly"}, want: []string{`RS_SHARER_INTERVAL (sharer.interval): "hourly" is not a duration`}},
		{name: "sharer_interval_too_short", env: map[string]string{"RS_SHARER_INTERVAL": "30s"}, want: []string{"sharer.interval must be >= 1m0s, got 30s"}},
		{name: "chunk_too_small", env: map[string]string{"RS_S3_CHUNK_SIZE": "1MiB"}, want: []string{"s3.chunk_size must be between 5MiB and 512MiB, got 1MiB"}},
		{name: "chunk_not_aligned", env: map[string]string{"RS_S3_CHUNK_SIZE": "5242881"}, want: []string{"s3.chunk_size must be a multiple of 16"}},
		{name: "bad_size", env: map[string]string{"RS_S3_CHUNK_SIZE": "big"}, want: []string{`"big" is not a size`}},
		{name: "bad_bool", env: map[string]string{"RS_S3_REMOVE_AFTER_TRANSFER": "yes please"}, want: []string{"is not a boolean"}},
		{name: "sqs_protocol", env: map[string]string{"RS_AWS_SQS_PROTOCOL": "xml"}, want: []string{`aws.sqs_protocol must be one of ["json" "query"], got "xml"`}},
		{name: "retry_delay_max_below_delay", env: map[string]string{"RS_STAGES_RETRY_DELAY": "1m", "RS_STAGES_RETRY_DELAY_MAX": "30s"}, want: []string{"stages.retry_delay_max must be between stages.retry_delay (1m0s) and 12h, got 30s"}},
		{name: "too_many_deliveries", env: map[string]string{"RS_STAGES_MAX_DELIVERIES": "101"}, want: []string{"stages.max_deliveries must be >= 1 and <= 100, got 101"}},
		{name: "negative_drain", env: map[string]string{"RS_STAGES_DRAIN_TIMEOUT": "-1s"}, want: []string{"stages.drain_timeout must be between 0s and 12h, got -1s"}},
		{name: "log_level", env: map[string]string{"RS_LOGGER_LEVEL": "loud"}, want: []string{`logger.level must be one of`}},
		{name: "configurator_without_url", env: map[string]string{"RS_INSTANCES_SOURCE": "configurator", "RS_SHARER_INSTANCES": "a.example"}, want: []string{"instances.configurator.url must be set"}},
		{name: "configurator_without_sweep", env: map[string]string{"RS_INSTANCES_SOURCE": "configurator", "RS_INSTANCES_CONFIGURATOR_URL": "https://c.example"},
			want: []string{"sharer.instances must name the instances to sweep when instances.source is configurator"}},
		{name: "configurator_plain_http", env: map[string]string{"RS_INSTANCES_SOURCE": "configurator", "RS_SHARER_INSTANCES": "a.example",
			"RS_INSTANCES_CONFIGURATOR_URL": "http://configurator.internal"}, want: []string{"instances.configurator.url uses plain http to configurator.internal, which is not a loopback host: use https, or set tls.allow_plain_http"}},
		{name: "endpoint_plain_http", env: map[string]string{"RS_AWS_ENDPOINTS_SQS": "http://10.0.0.5:4100"}, want: []string{"aws.endpoints.sqs uses plain http to 10.0.0.5"}},
		{name: "endpoint_not_url", env: map[string]string{"RS_AWS_ENDPOINTS_S3": "127.0.0.1:7070"}, want: []string{`aws.endpoints.s3 must be an http or https URL, got "127.0.0.1:7070"`}},
		{name: "key_without_secret", env: map[string]string{"RS_AWS_ACCESS_KEY_ID": "id"}, want: []string{"must be set together"}},
		{name: "duplicate_topic", env: map[string]string{"RS_STAGES_SHARE_TOPIC": "recording-jobs"}, want: []string{`stages.share.topic must differ from stages.parse.topic, both are "recording-jobs"`}},
		{name: "bad_topic", env: map[string]string{"RS_STAGES_POISON": "a b"}, want: []string{`stages.poison must be 1 to 80 letters`}},
		{name: "transport", env: map[string]string{"RS_STAGES_TRANSPORT": "kafka"}, want: []string{`stages.transport must be one of ["aws" "memory"], got "kafka"`}},
		{name: "subscription_queue_too_long", env: map[string]string{"RS_STAGES_TRANSFER_TOPIC": strings.Repeat("t", 72)}, want: []string{`stages.transfer.topic gives the SQS queue name "` + strings.Repeat("t", 72) + `-transfer", which is 81 characters: SQS allows at most 80`}},
		{name: "queue_collision", env: map[string]string{"RS_STAGES_PARSE_QUEUE": "recording-share-share"}, want: []string{`stages.share.topic gives the SQS queue name "recording-share-share", which stages.parse.queue gives too`}},
		{name: "queue_url_collision", env: map[string]string{"RS_STAGES_PARSE_QUEUE": "https://sqs.us-east-1.amazonaws.com/1/recording-parsed-resolve"}, want: []string{`which stages.parse.queue gives too`}},
		{name: "inbound_queue", env: map[string]string{"RS_STAGES_PARSE_QUEUE": "ftp://host/jobs"}, want: []string{`stages.parse.queue must be a queue name`}},
		{name: "inbound_queue_name", env: map[string]string{"RS_STAGES_PARSE_QUEUE": "jobs.fifo"}, want: []string{`stages.parse.queue must be a queue name`}},
		{name: "transferred_duplicate", env: map[string]string{"RS_STAGES_TRANSFERRED": "recording-poison"}, want: []string{`stages.poison must differ from stages.transferred, both are "recording-poison"`}},
		{name: "retry_delay", env: map[string]string{"RS_STAGES_RETRY_DELAY": "-1s"}, want: []string{"stages.retry_delay must be between 0s and 12h, got -1s"}},
		{name: "listen", env: map[string]string{"RS_HTTP_LISTEN": "8080"}, want: []string{`http.listen must be host:port, got "8080"`}},
		{name: "several_at_once", env: map[string]string{"RS_STAGES_PARSE_WORKERS": "0", "RS_STAGES_MAX_DELIVERIES": "0"}, want: []string{"stages.parse.workers", "stages.max_deliveries must be >= 1 and <= 100, got 0"}},
		{name: "unknown_key_in_file", file: "stages:\n  transfer:\n    wokers: 2\n", want: []string{"field wokers not found"}},
		{name: "bad_yaml_type", file: "s3:\n  parallel: lots\n", want: []string{"cannot parse configuration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := conf.Load(configFile(t, tt.file), envMap(tt.env))
			if err == nil {
				t.Fatal("Load accepted the configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestLoad_memory_budget checks s3.parts_in_flight, s3.memory_budget and the
// rule stages.transfer.workers x (s3.parallel + s3.parts_in_flight) x
// s3.chunk_size <= s3.memory_budget, from the file and the environment.
func TestLoad_memory_budget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		want    []string // substrings of the error; nil: the configuration is valid
		notWant []string // not in the error
		check   func(conf.Config) bool
	}{
		{name: "default", check: func(c conf.Config) bool {
			return c.S3.PartsInFlight == conf.DefaultPartsInFlight && c.S3.Parallel == conf.DefaultTransferParallel &&
				c.S3.MemoryBudget == 1<<30 && c.TransferMemory() == 560<<20
		}},
		{name: "exactly_at_budget", env: map[string]string{"RS_S3_PARALLEL": "6", "RS_S3_CHUNK_SIZE": "32MiB"},
			check: func(c conf.Config) bool { return c.TransferMemory() == 1<<30 }},
		{name: "over_budget", env: map[string]string{"RS_STAGES_TRANSFER_WORKERS": "4", "RS_S3_PARTS_IN_FLIGHT": "16"},
			want: []string{"stages.transfer.workers (4) x (s3.parallel (4) + s3.parts_in_flight (16)) x s3.chunk_size (20MiB) = 1600MiB exceeds s3.memory_budget (1GiB)"}},
		{name: "over_budget_raised", env: map[string]string{"RS_STAGES_TRANSFER_WORKERS": "4", "RS_S3_PARTS_IN_FLIGHT": "16", "RS_S3_MEMORY_BUDGET": "2GiB"},
			check: func(c conf.Config) bool { return c.S3.PartsInFlight == 16 && c.S3.MemoryBudget == 2<<30 }},
		{name: "one_byte_over", env: map[string]string{"RS_S3_PARALLEL": "6", "RS_S3_CHUNK_SIZE": "32MiB", "RS_S3_MEMORY_BUDGET": "1073741823"},
			want: []string{"stages.transfer.workers (2) x (s3.parallel (6) + s3.parts_in_flight (10)) x s3.chunk_size (32MiB) = 1GiB exceeds s3.memory_budget (1073741823)"}},
		{name: "decimal_budget", env: map[string]string{"RS_S3_MEMORY_BUDGET": "500MB"},
			want: []string{"= 560MiB exceeds s3.memory_budget (500000000)"}},
		{name: "file_over_budget", file: "s3:\n  parts_in_flight: 12\n  memory_budget: 600MiB\n",
			want: []string{"s3.parts_in_flight (12)) x s3.chunk_size (20MiB) = 640MiB exceeds s3.memory_budget (600MiB)"}},
		{name: "file_then_env", file: "s3:\n  parts_in_flight: 12\n  memory_budget: 600MiB\n", env: map[string]string{"RS_S3_PARTS_IN_FLIGHT": "11"},
			check: func(c conf.Config) bool { return c.S3.PartsInFlight == 11 && c.TransferMemory() == c.S3.MemoryBudget }},
		{name: "parts_in_flight_zero", env: map[string]string{"RS_S3_PARTS_IN_FLIGHT": "0"},
			want: []string{"s3.parts_in_flight must be >= 1 and <= 64, got 0"}, notWant: []string{"exceeds"}},
		{name: "parts_in_flight_too_many", env: map[string]string{"RS_S3_PARTS_IN_FLIGHT": "65", "RS_S3_MEMORY_BUDGET": "100GiB"},
			want: []string{"s3.parts_in_flight must be >= 1 and <= 64, got 65"}, notWant: []string{"exceeds"}},
		{name: "parts_in_flight_not_an_integer", env: map[string]string{"RS_S3_PARTS_IN_FLIGHT": "ten"},
			want: []string{`RS_S3_PARTS_IN_FLIGHT (s3.parts_in_flight): "ten" is not an integer`}},
		{name: "budget_zero", env: map[string]string{"RS_S3_MEMORY_BUDGET": "0"},
			want: []string{"s3.memory_budget must be positive, got 0"}, notWant: []string{"exceeds"}},
		{name: "budget_not_a_size", env: map[string]string{"RS_S3_MEMORY_BUDGET": "lots"},
			want: []string{`RS_S3_MEMORY_BUDGET (s3.memory_budget): "lots" is not a size`}},
		{name: "bad_factor_reported_alone", env: map[string]string{"RS_S3_CHUNK_SIZE": "1GiB"},
			want: []string{"s3.chunk_size must be between"}, notWant: []string{"exceeds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := conf.Load(configFile(t, tt.file), envMap(tt.env))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if tt.check != nil && !tt.check(cfg) {
					t.Errorf("settings not as expected: %+v, memory %s", cfg.S3, cfg.TransferMemory())
				}
				// The same settings with a budget one byte short are refused.
				cfg.S3.MemoryBudget = cfg.TransferMemory() - 1
				if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "exceeds s3.memory_budget") {
					t.Errorf("a budget one byte short: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Load accepted the configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"stages.transfer.workers": "RS_STAGES_TRANSFER_WORKERS",
		"aws.endpoints.s3":        "RS_AWS_ENDPOINTS_S3",
		"s3.chunk_size":           "RS_S3_CHUNK_SIZE",
		"s3.parts_in_flight":      "RS_S3_PARTS_IN_FLIGHT",
		"s3.memory_budget":        "RS_S3_MEMORY_BUDGET",
	} {
		if got := conf.EnvName(path); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	t.Parallel()
	const value = "hunter2-very-secret"
	s := conf.Secret(value)
	cfg := conf.Default()
	cfg.AWS.SecretAccessKey = s
	inst := conf.Instance{Dracoon: conf.DracoonAccount{Password: s, EncryptionPassword: s, ClientSecret: s}}
	js, _ := json.Marshal(inst)
	var logged strings.Builder
	log := logrus.New()
	log.SetOutput(&logged)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.WithField("instance", inst).WithField("secret", s).WithField("config", cfg).Info("x")
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s), "%#v": fmt.Sprintf("%#v", s),
		"%x": fmt.Sprintf("%x", s), "%+v instance": fmt.Sprintf("%+v", inst), "%#v instance": fmt.Sprintf("%#v", inst),
		"%+v config": fmt.Sprintf("%+v", cfg), "json": string(js), "logrus": logged.String(), "error": fmt.Errorf("x: %v", s).Error(),
	} {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s shows the secret: %s", name, out)
		}
	}
	if s.Reveal() != value || s.String() != "[redacted]" || conf.Secret("").String() != "" {
		t.Errorf("Reveal/String wrong")
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"20MiB": 20 << 20, "5MB": 5e6, "1048576": 1 << 20, "2 GiB": 2 << 30, "16kib": 16 << 10, "7B": 7} {
		var b conf.ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || int64(b) != want {
			t.Errorf("ByteSize(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1TiB", "99999999999GiB"} {
		var b conf.ByteSize
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("ByteSize(%q) accepted as %d", in, b)
		}
	}
	if got := conf.ByteSize(20 << 20).String(); got != "20MiB" {
		t.Errorf("String = %q", got)
	}
}

func TestValidate_poison_queue_name(t *testing.T) {
	long := strings.Repeat("p", 75) // "-inspect" makes 83 characters
	_, err := conf.Load("", func(k string) (string, bool) {
		if k == "RS_STAGES_POISON" {
			return long, true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "stages.poison gives the SQS queue name") {
		t.Fatalf("err = %v", err)
	}
}

func TestStages_NackDelay(t *testing.T) {
	s := conf.Default().Stages
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second,
		320 * time.Second, 640 * time.Second, 15 * time.Minute, 15 * time.Minute}
	for i, w := range want {
		if got := s.NackDelay(i + 1); got != w {
			t.Errorf("NackDelay(%d) = %s, want %s", i+1, got, w)
		}
	}
	// The defaults carry a job through an outage of an hour without
	// poisoning it.
	if b := s.OutageBudget(); b < time.Hour {
		t.Errorf("the defaults' outage budget is %s, want at least 1h", b)
	}
	if s.DeadLetterReceives() < 5*s.MaxDeliveries || s.DeadLetterReceives() > 1000 {
		t.Errorf("dead-letter receive count %d for %d deliveries", s.DeadLetterReceives(), s.MaxDeliveries)
	}
	flat := conf.Stages{RetryDelay: time.Second, RetryDelayMax: time.Second, MaxDeliveries: 4}
	if got := flat.OutageBudget(); got != 3*time.Second {
		t.Errorf("flat budget = %s, want 3s", got)
	}
	zero := conf.Stages{MaxDeliveries: 3}
	if got := zero.NackDelay(3); got != 0 {
		t.Errorf("zero delay doubled to %s", got)
	}
}

// TestLoad_plain_http_allowed: tls.allow_plain_http lets http endpoints on
// other hosts through; loopback ones need nothing.
func TestLoad_plain_http_allowed(t *testing.T) {
	for _, env := range []map[string]string{
		{"RS_AWS_ENDPOINTS_SQS": "http://10.0.0.5:4100", "RS_TLS_ALLOW_PLAIN_HTTP": "true"},
		{"RS_AWS_ENDPOINTS_SQS": "http://127.0.0.1:4100"},
		{"RS_AWS_ENDPOINTS_SQS": "http://localhost:4100"},
	} {
		if _, err := conf.Load("", envMap(env)); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}
