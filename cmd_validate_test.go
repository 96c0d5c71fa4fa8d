package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	bad := `{"storage":{"type":"dracoon","extra":{"aws.s3":{"bucket":"b","keys":["k"]},` +
		`"dracoon":{"targets":[{"path":"a","expiration":"1 hour"}]}}},` +
		`"meeting":{"id":1,"date":"2020-01-01T00:00:00Z","user":{"email":"e@x"}},"instance":{"domain":"d"}}`
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantOut    []string
		wantErrOut []string
	}{
		{
			name:     "original_example",
			args:     []string{"--now", "2017-09-11T20:24:43Z", "testdata/messages/original-example.json"},
			wantCode: 0,
			wantOut:  []string{`"bucket": "24s-public"`, `"sandbox/test-video.mp4"`, `"instance": "24slocal.new.com"`, `"expireAt": "2021-12-26T20:24:43Z"`},
		},
		{
			name:       "stdin_with_errors",
			args:       []string{"-"},
			stdin:      bad,
			wantCode:   1,
			wantErrOut: []string{`storage.extra.dracoon.targets[0].expiration: unknown unit "hour"`},
		},
		{name: "no_file", args: nil, wantCode: 2, wantErrOut: []string{"usage: recording-storage validate"}},
		{name: "bad_now", args: []string{"--now", "today", "-"}, wantCode: 2, wantErrOut: []string{`--now: "today" is not an RFC 3339 date-time`}},
		{name: "missing_file", args: []string{"does-not-exist.json"}, wantCode: 1, wantErrOut: []string{"does-not-exist.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := dispatch(context.Background(), append([]string{"validate"}, tt.args...), stdio{in: strings.NewReader(tt.stdin), out: &out, err: &errOut})
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %s:\n%s", w, out.String())
				}
			}
			for _, w := range tt.wantErrOut {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %s:\n%s", w, errOut.String())
				}
			}
			if tt.wantCode == 0 {
				var job struct {
					Source struct {
						Bucket string   `json:"bucket"`
						Keys   []string `json:"keys"`
					} `json:"source"`
					Targets []struct {
						Path     string  `json:"path"`
						ExpireAt *string `json:"expireAt"`
					} `json:"targets"`
				}
				if err := json.Unmarshal(out.Bytes(), &job); err != nil || len(job.Source.Keys) != 1 || len(job.Targets) != 1 {
					t.Errorf("stdout is not the normalized job: %v\n%s", err, out.String())
				}
			}
		})
	}
}

// TestHelp: every command prints its usage for --help and exits 0.
func TestHelp(t *testing.T) {
	for name := range commands() {
		code, out, errOut := runCtx(context.Background(), name, "--help")
		if code != 0 || !strings.Contains(out+errOut, "usage: recording-storage "+name) {
			t.Errorf("%s --help: exit %d, %q", name, code, out+errOut)
		}
	}
}
