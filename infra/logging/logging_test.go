package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/logging"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      conf.Logger
		wantJSON bool
		wantErr  bool
	}{
		{name: "json", cfg: conf.Logger{Level: "info", Format: "json"}, wantJSON: true},
		{name: "auto_on_a_buffer_is_json", cfg: conf.Logger{Level: "debug", Format: "auto"}, wantJSON: true},
		{name: "text", cfg: conf.Logger{Level: "info", Format: "text"}},
		{name: "bad_level", cfg: conf.Logger{Level: "chatty", Format: "json"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(tt.cfg, &buf)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v", err)
			}
			if err != nil {
				return
			}
			logging.WithCode(log, logging.CodeTransferStatus).WithField(logging.FieldJobID, "j1").Info("uploaded")
			var entry map[string]any
			isJSON := json.Unmarshal(buf.Bytes(), &entry) == nil
			if isJSON != tt.wantJSON {
				t.Fatalf("output %q: JSON = %v, want %v", buf.String(), isJSON, tt.wantJSON)
			}
			if isJSON && (entry["code"] != float64(15006) || entry["job_id"] != "j1" || entry["msg"] != "uploaded") {
				t.Errorf("entry = %v", entry)
			}
			if !isJSON && !strings.Contains(buf.String(), "code=15006") {
				t.Errorf("text entry %q lacks the code", buf.String())
			}
		})
	}
}
