// Package errclass holds the project's one classification of errors: every
// layer (the DRACOON client, the configurator, the messages, the S3 source
// and the pipeline middleware) marks or reads errors through it.
//
// There are three classes:
//
//   - Permanent: the input or the configuration is wrong; repeating cannot
//     help. The pipeline sends the message to the poison queue with the reason.
//   - Transient: the network, a 5xx, a 429 or a 408, a truncated body;
//     repeating later may succeed. The pipeline retries with backoff.
//   - Unknown: a write may or may not have taken effect (its answer was
//     lost) and the truth could not be learned. Whoever repeats the work
//     must find out the truth first (look the result up) before writing
//     again.
//
// An error is classified by the outermost mark in its chain (an error in
// the chain that has an ErrorClass method, such as the wrappers returned by
// Permanent, Transient and Unknown); an error that wraps several takes the
// least final class among them (see Of). Unmarked errors fall back to a few
// standard rules (context errors, network errors, truncated reads are
// transient) and otherwise count as transient: a message whose failure
// nobody understood is retried until its deliveries run out, never dropped.
package errclass

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Class is the class of an error.
type Class int

// The classes. The zero value is Transient, the class of unmarked errors.
const (
	Transient Class = iota // retry with backoff
	Permanent              // the input or configuration is wrong: do not retry
	Unknown                // a write's outcome is unknown: learn the truth before repeating
)

// String returns "transient", "permanent" or "unknown".
func (c Class) String() string {
	switch c {
	case Permanent:
		return "permanent"
	case Unknown:
		return "unknown"
	default:
		return "transient"
	}
}

// Classifier is implemented by errors that know their class.
type Classifier interface {
	error
	ErrorClass() Class
}

// Of returns the class of err; nil is Transient (there is nothing to classify,
// callers check err != nil first). An error wrapping several errors
// (errors.Join, fmt.Errorf with several %w) has the least final class of
// those that are marked: Unknown before Transient before Permanent, so that
// a permanent failure next to one that may pass is retried, not given up.
func Of(err error) Class {
	if c, ok := classOf(err); ok {
		return c
	}
	return Transient
}

// classOf returns the class of the outermost mark on err's chain, and
// whether there is one.
func classOf(err error) (Class, bool) {
	for err != nil {
		if c, ok := err.(Classifier); ok {
			return c.ErrorClass(), true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			var (
				class Class
				found bool
			)
			for _, e := range u.Unwrap() {
				if c, ok := classOf(e); ok && (!found || finality(c) < finality(class)) {
					class, found = c, true
				}
			}
			return class, found
		default:
			return 0, false
		}
	}
	return 0, false
}

// finality orders the classes by how final a failure of the class is.
func finality(c Class) int {
	switch c {
	case Unknown:
		return 0
	case Transient:
		return 1
	default:
		return 2
	}
}

// IsPermanent reports whether err is of class Permanent.
func IsPermanent(err error) bool { return err != nil && Of(err) == Permanent }

// IsTransient reports whether err is of class Transient.
func IsTransient(err error) bool { return err != nil && Of(err) == Transient }

// IsUnknown reports whether err is of class Unknown.
func IsUnknown(err error) bool { return err != nil && Of(err) == Unknown }

// IsNetwork reports whether err is a failure of the connection itself
// (refused, reset, timed out, cut off), as opposed to an answer.
func IsNetwork(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded)
}

// marked wraps an error with a class.
type marked struct {
	err   error
	class Class
}

func (m *marked) Error() string     { return m.err.Error() }
func (m *marked) Unwrap() error     { return m.err }
func (m *marked) ErrorClass() Class { return m.class }

// Mark returns err marked with class c; nil stays nil. The message is err's.
func Mark(err error, c Class) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, class: c}
}

// AsPermanent marks err as Permanent; nil stays nil.
func AsPermanent(err error) error { return Mark(err, Permanent) }

// AsTransient marks err as Transient; nil stays nil.
func AsTransient(err error) error { return Mark(err, Transient) }

// AsUnknown marks err as Unknown; nil stays nil.
func AsUnknown(err error) error { return Mark(err, Unknown) }

// sentinel is an error value of a fixed class, for package-level sentinels.
type sentinel struct {
	msg   string
	class Class
	kind  error // nil: none
}

func (s *sentinel) Error() string     { return s.msg }
func (s *sentinel) ErrorClass() Class { return s.class }
func (s *sentinel) Unwrap() error     { return s.kind }

// New returns a distinct error value with message msg and class c, for
// sentinels compared with errors.Is.
func New(c Class, msg string) error { return &sentinel{msg: msg, class: c} }

// NewKind is New for a sentinel that is also one of the standard library's
// kinds of error (errors.Is(err, kind) holds), such as fs.ErrNotExist, so
// that callers can test the kind without importing the sentinel's package.
func NewKind(c Class, msg string, kind error) error {
	return &sentinel{msg: msg, class: c, kind: kind}
}
