package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// EnvConfigFile names the environment variable that points at the
// configuration file when no path is given.
const EnvConfigFile = "RS_CONFIG"

// Load reads the configuration: the defaults, then the YAML file at path (if
// path is empty, the file named by RS_CONFIG, if any), then the RS_*
// environment variables from lookup (os.LookupEnv when nil). It returns an
// error listing every bad value.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if path == "" {
		path, _ = lookup(EnvConfigFile)
	}
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("cannot read configuration: %w", err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("cannot parse configuration %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, lookup); err != nil {
		return Config{}, fmt.Errorf("invalid environment:\n%w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// decodeYAML decodes data into v, refusing unknown fields so that a typo in a
// key is an error instead of a silently ignored setting.
func decodeYAML(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
