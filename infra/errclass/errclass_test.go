package errclass_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"syscall"
	"testing"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

func TestOf(t *testing.T) {
	sentinelP := errclass.New(errclass.Permanent, "bad thing")
	tests := []struct {
		name string
		err  error
		want errclass.Class
	}{
		{"plain", errors.New("x"), errclass.Transient},
		{"permanent", errclass.AsPermanent(errors.New("x")), errclass.Permanent},
		{"unknown", errclass.AsUnknown(errors.New("x")), errclass.Unknown},
		{"wrapped permanent", fmt.Errorf("ctx: %w", errclass.AsPermanent(io.EOF)), errclass.Permanent},
		{"outermost wins", errclass.AsTransient(errclass.AsPermanent(errors.New("x"))), errclass.Transient},
		{"sentinel", fmt.Errorf("room 3: %w", sentinelP), errclass.Permanent},
		{"joined first marked", errors.Join(errors.New("a"), errclass.AsUnknown(errors.New("b"))), errclass.Unknown},
		{"joined permanent and transient", errors.Join(sentinelP, errclass.AsTransient(errors.New("b"))), errclass.Transient},
		{"joined transient and permanent", errors.Join(errclass.AsTransient(errors.New("b")), sentinelP), errclass.Transient},
		{"joined permanent and unknown", errors.Join(sentinelP, errclass.AsTransient(errors.New("b")), errclass.AsUnknown(errors.New("c"))), errclass.Unknown},
		{"joined permanent and unmarked", errors.Join(sentinelP, errors.New("b")), errclass.Permanent},
		{"two %w, permanent first", fmt.Errorf("%w (and the lookup failed: %w)", sentinelP, errclass.AsTransient(io.EOF)), errclass.Transient},
		{"mark over a join", errclass.AsPermanent(errors.Join(errclass.AsTransient(io.EOF))), errclass.Permanent},
		{"joined, nested", fmt.Errorf("x: %w", errors.Join(sentinelP, fmt.Errorf("y: %w", errclass.AsTransient(io.EOF)))), errclass.Transient},
		{"context", context.Canceled, errclass.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errclass.Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if errclass.Mark(nil, errclass.Permanent) != nil {
		t.Error("Mark(nil) is not nil")
	}
	if errclass.IsPermanent(nil) || errclass.IsTransient(nil) || errclass.IsUnknown(nil) {
		t.Error("nil has a class")
	}
	if !errors.Is(fmt.Errorf("w: %w", sentinelP), sentinelP) {
		t.Error("sentinel not found by errors.Is")
	}
}

func TestIsNetwork(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{syscall.ECONNREFUSED, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{errors.New("x"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := errclass.IsNetwork(tt.err); got != tt.want {
			t.Errorf("IsNetwork(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestNewKind: a sentinel of a kind keeps its class and message and is
// also its kind, wrapped or not.
func TestNewKind(t *testing.T) {
	sentinel := errclass.NewKind(errclass.Permanent, "no such key", fs.ErrNotExist)
	for _, err := range []error{sentinel, fmt.Errorf("s3://b/k: %w", sentinel)} {
		if !errors.Is(err, sentinel) || !errors.Is(err, fs.ErrNotExist) || !errclass.IsPermanent(err) {
			t.Errorf("%v: is sentinel %v, is fs.ErrNotExist %v, class %s", err, errors.Is(err, sentinel), errors.Is(err, fs.ErrNotExist), errclass.Of(err))
		}
	}
	if sentinel.Error() != "no such key" || errors.Is(errclass.New(errclass.Permanent, "x"), fs.ErrNotExist) {
		t.Errorf("message %q; a plain sentinel is no kind", sentinel)
	}
}
