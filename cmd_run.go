package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/infra/httpserver"
	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/infra/setup"
	"github.com/recording-storage/recording-storage/pipeline"
)

// runRun implements "recording-storage run": the service.
func runRun(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet(s, "run", "run [--config FILE] [--stages parse,resolve,rooms,transfer,share,sweep]",
		"Runs the pipeline's stages (default: all) and the HTTP server (/healthcheck, /livez, /readyz, /metrics) until SIGTERM or SIGINT.")
	configFile := configFlag(fs)
	stageList := fs.String("stages", strings.Join(conf.StageNames(), ","), "comma-separated stages to run in this process")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(s.err, "run: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	stages, err := pipeline.SelectStages(strings.Split(*stageList, ","))
	if err != nil {
		return commandError(s, "run", err)
	}
	env, err := openStagesEnv(ctx, *configFile, s.err, stages)
	if err != nil {
		return commandError(s, "run", err)
	}
	if err := serve(ctx, env, stages); err != nil {
		logging.WithCode(env.log, logging.CodeWorker).WithError(err).Error("service stopped")
		return commandError(s, "run", err)
	}
	return 0
}

// serve runs the stages and the HTTP server until ctx is done.
func serve(ctx context.Context, env *env, stages []string) error {
	domains := setup.SweepInstances(env.cfg.Sharer, env.instances)
	svc, err := pipeline.New(ctx, pipeline.Options{Config: env.cfg, Stages: stages, Steps: env.steps,
		Instances: domains, Registry: env.registry, Logger: env.log})
	if err != nil {
		return err
	}
	hs, err := httpserver.New(httpserver.Config{Listen: env.cfg.HTTP.Listen, Checks: healthChecks(env, svc, domains),
		Registry: env.registry, Logger: env.log})
	if err != nil {
		_ = svc.Close()
		return err
	}
	logging.WithCode(env.log, logging.CodeStart).WithFields(map[string]any{"stages": svc.Stages(),
		"transport": env.cfg.Stages.Transport, "http": hs.Addr()}).Info("recording-storage started")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(gctx) })
	g.Go(func() error {
		// Health checks start once the handlers run, so that a starting
		// service reports "starting", not stopped stages.
		select {
		case <-svc.Running():
		case <-gctx.Done():
		}
		return hs.Run(gctx)
	})
	err = g.Wait()
	if ctx.Err() != nil && err == nil {
		env.log.Info("recording-storage stopped")
	}
	return err
}

// healthChecks are the checks of /healthcheck: the stages' (see
// pipeline.Service.StageChecks), then <component>_error for what those
// stages depend on (conf.StageDecl.Needs), and nothing else: the queues or
// topics (pipeline.Service.TransportChecks), S3, the instance
// configuration and the DRACOON accounts of the instances domains lists.
func healthChecks(env *env, svc *pipeline.Service, domains func(context.Context) ([]string, error)) []httpserver.Check {
	checks := svc.StageChecks()
	stages := svc.Stages()
	checks = append(checks, svc.TransportChecks()...)
	if env.needs[conf.NeedS3Read] {
		checks = append(checks, httpserver.Check{Name: "s3_error", Func: env.objects.Reachable})
	}
	if env.needs[conf.NeedInstances] {
		checks = append(checks, httpserver.Check{Name: "configurator_error", Func: func(ctx context.Context) error {
			list, err := domains(ctx)
			if err != nil && !slices.Contains(stages, conf.StageSweep) {
				return nil // no domain to ask for; only the sweep needs the list
			}
			if err != nil || len(list) == 0 {
				return err
			}
			_, err = env.instances.Instance(ctx, list[0])
			return err
		}})
	}
	if env.needs[conf.NeedDracoon] {
		checks = append(checks, httpserver.Check{Name: "dracoon_error", Func: func(ctx context.Context) error {
			list, err := domains(ctx)
			if err != nil {
				return nil // reported by configurator_error
			}
			var errs []error
			for _, d := range list {
				if err := env.steps.CheckInstance(ctx, d); err != nil {
					errs = append(errs, fmt.Errorf("instance %s: %w", d, err))
				}
			}
			return errors.Join(errs...)
		}})
	}
	return checks
}
