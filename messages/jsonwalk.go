package messages

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// walker reads a generic JSON document (decoded with UseNumber) field by field,
// recording a FieldError with the field's JSON path for every problem, so that
// one pass reports everything wrong with a message.
type walker struct {
	errs fieldErrors
}

// parentMissing is the value of a field whose parent object is missing or
// invalid: the parent's error already covers it, so it is not reported again.
type parentMissing struct{}

// field returns obj[key] and its path; absent and null fields give nil.
func field(obj map[string]any, path, key string) (any, string) {
	p := joinPath(path, key)
	if obj == nil {
		return parentMissing{}, p
	}
	return obj[key], p
}

// quotedField is field for keys that contain a dot, such as "aws.s3".
func quotedField(obj map[string]any, path, key string) (any, string) {
	p := path + "[" + strconv.Quote(key) + "]"
	if obj == nil {
		return parentMissing{}, p
	}
	return obj[key], p
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "an unknown value"
}

// need returns v as an object; a missing value is an error.
func (w *walker) need(v any, path string) map[string]any { return w.object(path, v, true) }

// opt returns v as an object, or nil when it is missing.
func (w *walker) opt(v any, path string) map[string]any { return w.object(path, v, false) }

// object returns v as an object. A missing value is an error when required.
func (w *walker) object(path string, v any, required bool) map[string]any {
	switch o := v.(type) {
	case parentMissing:
	case map[string]any:
		return o
	case nil:
		if required {
			w.errs.add(path, "is required")
		}
	default:
		w.errs.add(path, "must be an object, got %s", typeName(v))
	}
	return nil
}

// optStr returns v as a string; ok is false when it is missing or invalid.
func (w *walker) optStr(v any, path string) (string, bool) { return w.str(path, v, false) }

// str returns v as a string. Missing, null or blank values are errors when
// required; ok is false when no usable string was found.
func (w *walker) str(path string, v any, required bool) (s string, ok bool) {
	switch t := v.(type) {
	case parentMissing:
	case string:
		if required && len(strings.TrimSpace(t)) == 0 {
			w.errs.add(path, "must not be empty")
			return "", false
		}
		return t, true
	case nil:
		if required {
			w.errs.add(path, "is required")
		}
	default:
		w.errs.add(path, "must be a string, got %s", typeName(v))
	}
	return "", false
}

// integer returns v as an int64; ok is false when v is missing or invalid.
func (w *walker) integer(path string, v any, required bool) (n int64, ok bool) {
	switch t := v.(type) {
	case parentMissing:
	case json.Number:
		if i, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return i, true
		}
		if f, err := strconv.ParseFloat(t.String(), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
		w.errs.add(path, "must be an integer, got %s", t.String())
	case nil:
		if required {
			w.errs.add(path, "is required")
		}
	default:
		w.errs.add(path, "must be an integer, got %s", typeName(v))
	}
	return 0, false
}
