package httpserver

import "testing"

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "no_url", in: "connection refused", want: "connection refused"},
		{name: "plain_url_kept", in: `Get "https://conf.example/instances/a.example": EOF`, want: `Get "https://conf.example/instances/a.example": EOF`},
		{name: "userinfo", in: "dial https://bob:pw@dracoon.example/api failed", want: "dial https://REDACTED@dracoon.example/api failed"},
		{name: "query", in: `Get "https://b.s3.example/k?X-Amz-Signature=abc&X-Amz-Credential=AK": 403`, want: `Get "https://b.s3.example/k?REDACTED": 403`},
		{name: "both_and_two_urls", in: "a http://u:p@h/x?t=1 b sqs://q?k=v#f", want: "a http://REDACTED@h/x?REDACTED b sqs://q?REDACTED#f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
