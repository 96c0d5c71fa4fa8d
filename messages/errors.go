package messages

import (
	"errors"
	"fmt"
	"strings"

	"github.com/recording-storage/recording-storage/infra/errclass"
)

// FieldError rejects one field of a message. Path is the JSON path of the field
// (for example "storage.extra.dracoon.targets[0].expiration"); an empty Path
// means the message as a whole.
type FieldError struct {
	Path   string
	Reason string
}

// Error returns "path: reason".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return "message: " + e.Reason
	}
	return e.Path + ": " + e.Reason
}

// ErrorClass is errclass.Permanent: the message itself is bad.
func (e *FieldError) ErrorClass() errclass.Class { return errclass.Permanent }

// ValidationError collects every FieldError found in one message.
type ValidationError struct {
	Fields []*FieldError
}

// Error lists every rejected field, separated by "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the field errors, so errors.As finds each *FieldError.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		errs[i] = f
	}
	return errs
}

// ErrorClass is errclass.Permanent: retrying cannot fix the message.
func (e *ValidationError) ErrorClass() errclass.Class { return errclass.Permanent }

// fieldErrors accumulates field errors while a message is walked.
type fieldErrors struct {
	list []*FieldError
}

func (fe *fieldErrors) add(path, format string, args ...any) {
	fe.list = append(fe.list, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// addErr records err under path, keeping the reason and relative path of
// every *FieldError inside err.
func (fe *fieldErrors) addErr(path string, err error) {
	var v *ValidationError
	if errors.As(err, &v) {
		for _, f := range v.Fields {
			fe.list = append(fe.list, &FieldError{Path: joinPath(path, f.Path), Reason: f.Reason})
		}
		return
	}
	var f *FieldError
	if errors.As(err, &f) {
		fe.list = append(fe.list, &FieldError{Path: joinPath(path, f.Path), Reason: f.Reason})
		return
	}
	fe.add(path, "%s", err.Error())
}

func (fe *fieldErrors) err() error {
	if len(fe.list) == 0 {
		return nil
	}
	return &ValidationError{Fields: fe.list}
}

func joinPath(base, rel string) string {
	switch {
	case rel == "":
		return base
	case base == "":
		return rel
	case strings.HasPrefix(rel, "["):
		return base + rel
	default:
		return base + "." + rel
	}
}
