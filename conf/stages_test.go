package conf_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/conf"
)

// TestStageTable: the declaration is consistent: unique stage and handler
// names, every stage that handles messages has settings, every payload
// type is read by one stage input (the inbound job aside), and every
// output topic is read by a stage.
func TestStageTable(t *testing.T) {
	s := conf.Default().Stages
	var names, handlerNames, payloads []string
	reads := map[string]bool{}
	for _, d := range conf.StageTable() {
		if slices.Contains(names, d.Name) {
			t.Errorf("stage %q declared twice", d.Name)
		}
		names = append(names, d.Name)
		if d.Worker == "" {
			t.Errorf("stage %q: no worker name for its health check", d.Name)
		}
		if d.Handles() && (d.Workers(s) < 1 || d.Timeout(s) <= 0) {
			t.Errorf("stage %q: workers %d, timeout %s by default", d.Name, d.Workers(s), d.Timeout(s))
		}
		for _, in := range d.Inputs {
			if slices.Contains(handlerNames, in.Handler) {
				t.Errorf("handler %q declared twice", in.Handler)
			}
			handlerNames = append(handlerNames, in.Handler)
			if in.Payload == nil || in.From(s) == "" || !strings.HasPrefix(in.Setting, "stages.") {
				t.Errorf("stage %q input %q: payload %v, reads %q, setting %q", d.Name, in.Handler, in.Payload, in.From(s), in.Setting)
				continue
			}
			if in.Inbound {
				continue
			}
			name, _ := in.Payload.PayloadType()
			if slices.Contains(payloads, name) {
				t.Errorf("payload %q read by two inputs: requeueing could not tell where it goes", name)
			}
			payloads = append(payloads, name)
			reads[in.From(s)] = true
			if got, gotIn, ok := conf.PayloadInput(name); !ok || got.Name != d.Name || gotIn.Handler != in.Handler {
				t.Errorf("PayloadInput(%q) = %s/%s, %v; want %s/%s", name, got.Name, gotIn.Handler, ok, d.Name, in.Handler)
			}
		}
	}
	for _, d := range conf.StageTable() {
		if out := d.Output(s); out != "" && !reads[out] {
			t.Errorf("stage %q publishes to %q, which no stage reads", d.Name, out)
		}
	}
	if !slices.Equal(names, conf.StageNames()) {
		t.Errorf("StageNames() = %v, want %v", conf.StageNames(), names)
	}
	if _, ok := conf.LookupStage("nope"); ok {
		t.Error(`LookupStage("nope") found a stage`)
	}
}

// TestValidate_every_stage: validation checks the settings of every stage
// that handles messages, as the table declares them: workers, timeout and
// the topic or queue of each input, each error naming its setting.
func TestValidate_every_stage(t *testing.T) {
	for _, d := range conf.StageTable() {
		if !d.Handles() {
			continue
		}
		env := "RS_STAGES_" + strings.ToUpper(d.Name) + "_"
		for _, tt := range []struct{ key, value, want string }{
			{"WORKERS", "0", "stages." + d.Name + ".workers must be"},
			{"TIMEOUT", "0s", "stages." + d.Name + ".timeout"},
		} {
			t.Run(d.Name+"/"+tt.key, func(t *testing.T) {
				_, err := conf.Load("", lookup(map[string]string{env + tt.key: tt.value}))
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s%s=%s: error %v, want one containing %q", env, tt.key, tt.value, err, tt.want)
				}
			})
		}
		for _, in := range d.Inputs {
			t.Run(d.Name+"/"+in.Handler, func(t *testing.T) {
				key := "RS_" + strings.ToUpper(strings.ReplaceAll(in.Setting, ".", "_"))
				_, err := conf.Load("", lookup(map[string]string{key: "bad name!"}))
				if err == nil || !strings.Contains(err.Error(), in.Setting+" must be") {
					t.Errorf("%s=\"bad name!\": error %v, want one naming %s", key, err, in.Setting)
				}
			})
		}
	}
}

// lookup returns an environment lookup of vars alone (RS_CONFIG unset).
func lookup(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}
