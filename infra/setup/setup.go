// Package setup builds the service's clients of the outside world from the
// configuration: the instance configuration source, the S3 source and the
// DRACOON accounts, as the steps take them.
package setup

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/awsclient"
	"github.com/recording-storage/recording-storage/infra/configurator"
	"github.com/recording-storage/recording-storage/infra/dracoon"
	"github.com/recording-storage/recording-storage/infra/s3source"
)

// Instances returns the instance configuration source that
// instances.source names: the file, or the configurator service, trusted
// as tls says.
func Instances(c conf.Instances, tls conf.TLS) (steps.Instances, error) {
	switch c.Source {
	case conf.InstanceSourceFile:
		return configurator.NewFile(c.File)
	case conf.InstanceSourceConfigurator:
		roots, err := tls.CertPool()
		if err != nil {
			return nil, err
		}
		return configurator.NewHTTP(c.Configurator, roots)
	}
	return nil, fmt.Errorf("instances.source %q is neither %s nor %s", c.Source, conf.InstanceSourceFile, conf.InstanceSourceConfigurator)
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

// Accounts returns the DRACOON accounts of the instances: one client per
// account configuration, shared by every job of the instance, with the
// service's DRACOON and TLS settings.
func Accounts(cfg conf.Config, log logrus.FieldLogger) steps.Accounts {
	return accounts{dracoon.NewPool(cfg.Dracoon, cfg.TLS, int64(cfg.S3.ChunkSize), log)}
}

// accounts gives the pool's clients as the steps' accounts.
type accounts struct{ pool *dracoon.Pool }

func (a accounts) Account(acct conf.DracoonAccount) (steps.Account, error) {
	c, err := a.pool.Client(acct)
	if err != nil {
		return nil, err // not a nil *Client in a non-nil interface
	}
	return account{c}, nil
}

// account is a client as the steps' Account: its uploads as the transfer
// engine's (see transfer.Client).
type account struct{ *dracoon.Client }

func (a account) StartUpload(ctx context.Context, spec dracoon.UploadSpec) (transfer.Upload, error) {
	return transfer.Client(a.Client).StartUpload(ctx, spec)
}

// SweepInstances returns what lists the instances the sweep covers:
// sharer.instances, or every instance of the instance file (a configurator
// cannot list its instances).
func SweepInstances(sharer conf.Sharer, instances steps.Instances) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) {
		if len(sharer.Instances) > 0 {
			return sharer.Instances, nil
		}
		if f, ok := instances.(interface{ Domains() []string }); ok {
			return f.Domains(), nil
		}
		return nil, errors.New("the sweep needs sharer.instances with the configurator as instance source")
	}
}
