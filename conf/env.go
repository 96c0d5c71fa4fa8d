package conf

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the name of every environment variable that overrides a
// configuration field.
const EnvPrefix = "RS_"

// EnvName returns the environment variable for a field path written as in the
// YAML file: "RS_" followed by the path in upper case, with "." replaced by "_".
// For example stages.transfer.workers is RS_STAGES_TRANSFER_WORKERS and
// aws.endpoints.s3 is RS_AWS_ENDPOINTS_S3.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// applyEnv sets every field of cfg whose environment variable lookup finds.
// Errors name the variable and the field.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	var errs []error
	walkFields(reflect.ValueOf(cfg).Elem(), "", func(path string, v reflect.Value) {
		raw, ok := lookup(EnvName(path))
		if !ok {
			return
		}
		if err := setField(v, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", EnvName(path), path, err))
		}
	})
	return errors.Join(errs...)
}

// walkFields calls fn for every leaf field below v with its YAML path.
func walkFields(v reflect.Value, prefix string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && !isLeaf(fv) {
			walkFields(fv, path, fn)
			continue
		}
		fn(path, fv)
	}
}

func isLeaf(v reflect.Value) bool {
	_, ok := v.Addr().Interface().(encoding.TextUnmarshaler)
	return ok
}

func setField(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(raw))
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 90s or 5m", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("fields of kind %s cannot be set from the environment", v.Kind())
		}
		var list []string
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list))
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("fields of kind %s cannot be set from the environment", v.Kind())
	}
	return nil
}
