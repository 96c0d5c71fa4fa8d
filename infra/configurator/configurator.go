// Package configurator provides instance configurations (conf.Instance) by
// instance domain, from a local file or from the HTTP configurator service.
package configurator

import (
	"errors"
	"fmt"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// ErrUnknownInstance reports a domain that has no configuration.
var ErrUnknownInstance = errors.New("unknown instance")

// Error is a failure to get an instance configuration. Permanent errors (an
// unknown instance, an invalid configuration) cannot be fixed by retrying.
type Error struct {
	Domain string
	Err    error
	class  errclass.Class
}

// Error names the domain and the cause.
func (e *Error) Error() string { return fmt.Sprintf("instance %q: %v", e.Domain, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorClass classifies the failure (package errclass).
func (e *Error) ErrorClass() errclass.Class { return e.class }
