// Package setup builds the service's clients of the outside world from the
// configuration: the instance configuration source and the S3 source.
package setup

import (
	"context"
	"fmt"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/configurator"
	"github.com/recording-storage/recording-storage/infra/s3source"
)

// InstanceSource is where instance configurations come from.
type InstanceSource interface {
	Instance(ctx context.Context, domain string) (conf.Instance, error)
}

// Instances returns the instance configuration source that
// instances.source names: the file, or the configurator service, trusted
// as tls says.
func Instances(c conf.Instances, tls conf.TLS) (InstanceSource, error) {
	switch c.Source {
	case "file":
		return configurator.NewFile(c.File)
	case "configurator":
		roots, err := tls.CertPool()
		if err != nil {
			return nil, err
		}
		return configurator.NewHTTP(c.Configurator, roots)
	}
	return nil, fmt.Errorf("instances.source %q is neither file nor configurator", c.Source)
}

// Objects returns the S3 source of recordings, reading with as many ranged
// GETs at once as the transfer workers and their chunks in flight need.
func Objects(ctx context.Context, cfg conf.Config) (*s3source.Source, error) {
	awsCfg, err := awsclient.Config(ctx, cfg.AWS)
	if err != nil {
		return nil, err
	}
	client := awsclient.S3(awsCfg, cfg.AWS)
	return s3source.New(client, s3source.Options{Concurrency: s3source.ReadConcurrency(cfg.Stages.Transfer.Workers, cfg.S3.Parallel),
		StallTimeout: cfg.S3.StallTimeout}), nil
}
