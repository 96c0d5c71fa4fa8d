package configurator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/errclass"
)

// File serves instance configurations from a YAML or JSON file that maps each
// instance domain to its configuration. It is read and checked once, by
// NewFile. File is safe for concurrent use.
type File struct {
	instances map[string]conf.Instance
}

// NewFile reads and validates the instance file at path.
func NewFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read instance file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m map[string]conf.Instance
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("cannot parse instance file %s: %w", path, err)
	}
	for domain, in := range m {
		if err := in.Validate(); err != nil {
			return nil, fmt.Errorf("instance file %s: instance %q:\n%w", path, domain, err)
		}
	}
	return &File{instances: m}, nil
}

// Instance returns the configuration of domain.
func (f *File) Instance(_ context.Context, domain string) (conf.Instance, error) {
	in, ok := f.instances[domain]
	if !ok {
		return conf.Instance{}, &Error{Domain: domain, Err: ErrUnknownInstance, class: errclass.Permanent}
	}
	return in, nil
}

// Domains returns the instance domains of the file, sorted.
func (f *File) Domains() []string {
	out := make([]string, 0, len(f.instances))
	for d := range f.instances {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}
