// Command recording-storage moves meeting recordings from AWS S3 into encrypted
// DRACOON rooms, driven by queue messages. Besides the service itself it offers
// operator tools; run it without arguments for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/recording-storage/recording-storage/conf"
	"github.com/recording-storage/recording-storage/handlers/steps"
	"github.com/recording-storage/recording-storage/handlers/transfer"
	"github.com/recording-storage/recording-storage/infra/errclass"
	"github.com/recording-storage/recording-storage/infra/logging"
	"github.com/recording-storage/recording-storage/infra/s3source"
	"github.com/recording-storage/recording-storage/infra/setup"
	"github.com/recording-storage/recording-storage/messages"
)

// command is one subcommand of the binary. run returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdio stdio) int
}

// stdio carries the standard streams so that commands can be tested.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func commands() map[string]command {
	return map[string]command{
		"demo":             {"upload, share and read back a generated recording on the local stack", runDemo},
		"crypto":           {"check key pairs and decrypt downloaded recordings", runCrypto},
		"validate":         {"parse and validate one job message, print the normalized job", runValidate},
		"dracoon-emulator": {"run the local DRACOON API emulator", runEmulator},
		"transfer":         {"transfer S3 objects into DRACOON rooms once, without queues", runTransfer},
		"run":              {"run the service: the pipeline's stages and the HTTP server", runRun},
		"submit":           {"validate a job message and send it to the inbound queue", runSubmit},
		"process":          {"run one job message through every stage in this process, without queues", runProcess},
		"poison":           {"list, show, requeue or purge the messages of the poison queue", runPoison},
		"topology":         {"print the topics, queues and subscriptions the configuration implies", runTopology},
		"iam-policy":       {"print the least-privilege IAM policy of a process running given stages", runIAMPolicy},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

// dispatch runs the subcommand named by args[0].
func dispatch(ctx context.Context, args []string, s stdio) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(s.out, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(s.err, "recording-storage: unknown command %q\n", args[0])
		usage(s.err, cmds)
		return 2
	}
	return c.run(ctx, args[1:], s)
}

// newFlagSet returns the flag set of a subcommand that reports to s.err and
// whose usage prints synopsis ("recording-storage NAME ...") and summary
// above the flag defaults.
func newFlagSet(s stdio, name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintln(s.err, "usage: recording-storage "+synopsis)
		if summary != "" {
			fmt.Fprintln(s.err, summary)
		}
		fs.PrintDefaults()
	}
	return fs
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: recording-storage COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, cmds[n].summary)
	}
}

// parseExit is the exit code after a flag set's Parse failed: 0 when help
// was asked for (the usage is printed), 2 for a bad command line.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// parseJobArgs parses the flags of a command whose one argument is a job
// message (FILE, or - for standard input), reads and validates it. code is
// the exit code when the command must stop, else -1.
func parseJobArgs(fs *flag.FlagSet, args []string, s stdio) (data []byte, job *messages.Job, code int) {
	if err := fs.Parse(args); err != nil {
		return nil, nil, parseExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, nil, 2
	}
	data, err := readInput(fs.Arg(0), s.in)
	if err != nil {
		return nil, nil, commandError(s, fs.Name(), errclass.AsPermanent(err))
	}
	if job, err = messages.ParseJob(data, time.Now()); err != nil {
		return nil, nil, invalid(s, fs.Name(), "job message", err)
	}
	return data, job, -1
}

// configFlag adds the --config flag every command that reads the
// configuration has.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration file (default: "+conf.EnvConfigFile+", else built-in defaults; RS_* variables override)")
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// optionalBool is a boolean flag that knows whether it was given.
type optionalBool struct{ set, value bool }

func (b *optionalBool) String() string {
	if !b.set {
		return ""
	}
	return strconv.FormatBool(b.value)
}

func (b *optionalBool) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	b.set, b.value = true, x
	return nil
}

// IsBoolFlag lets "--flag" alone mean true.
func (b *optionalBool) IsBoolFlag() bool { return true }

// usageError reports a bad command line: every rejected field of a
// validation error on its own line; exit code 2.
func usageError(s stdio, cmd string, err error) int { return invalid(s, cmd, "arguments", err) }

// invalid reports bad input (what: "arguments", "job message"): every
// rejected field of a validation error on its own line; exit code 2.
func invalid(s stdio, cmd, what string, err error) int {
	var verr *messages.ValidationError
	if errors.As(err, &verr) {
		fmt.Fprintf(s.err, "%s: invalid %s (%d problems):\n", cmd, what, len(verr.Fields))
		for _, f := range verr.Fields {
			fmt.Fprintf(s.err, "  %s\n", f)
		}
		return 2
	}
	fmt.Fprintf(s.err, "%s: %v\n", cmd, err)
	return 2
}

// commandError reports a failed command with the class of its error; exit
// code 1.
func commandError(s stdio, cmd string, err error) int {
	fmt.Fprintf(s.err, "%s: %v (%s error)\n", cmd, err, errclass.Of(err))
	return 1
}

// env is what commands that run jobs need: the configuration, the log, the
// clients of the outside world and the steps of a job. A client that no
// stage of the process needs is nil.
type env struct {
	cfg       conf.Config
	log       *logrus.Logger
	needs     map[conf.Dependency]bool // of the stages the env was opened for
	instances steps.Instances
	objects   *s3source.Source
	registry  *prometheus.Registry
	steps     *steps.Service
}

// openEnv opens the env of every stage (see openStagesEnv).
func openEnv(ctx context.Context, configFile string, logOut io.Writer) (*env, error) {
	return openStagesEnv(ctx, configFile, logOut, conf.StageNames())
}

// openStagesEnv loads the configuration (configFile, RS_CONFIG, RS_*), logs
// to logOut, and builds the clients that the given stages need
// (conf.StageDecl.Needs), with their metrics in a new registry: the parse stage
// alone reads no instance configuration and holds no DRACOON credential.
func openStagesEnv(ctx context.Context, configFile string, logOut io.Writer, stages []string) (*env, error) {
	cfg, err := conf.Load(configFile, nil)
	if err != nil {
		return nil, errclass.AsPermanent(err)
	}
	log, err := logging.New(cfg.Logger, logOut)
	if err != nil {
		return nil, errclass.AsPermanent(err)
	}
	e := &env{cfg: cfg, log: log, needs: map[conf.Dependency]bool{}, registry: prometheus.NewRegistry()}
	for _, st := range stages {
		decl, _ := conf.LookupStage(st) // selected: declared
		for _, d := range decl.Needs {
			e.needs[d] = true
		}
	}
	if e.needs[conf.NeedInstances] {
		if e.instances, err = setup.Instances(cfg.Instances, cfg.TLS); err != nil {
			return nil, errclass.AsPermanent(err)
		}
	}
	var objects steps.Objects
	if e.needs[conf.NeedS3Read] {
		if e.objects, err = setup.Objects(ctx, cfg); err != nil {
			return nil, err
		}
		objects = e.objects
	}
	m, err := transfer.NewMetrics(e.registry)
	if err != nil {
		return nil, err
	}
	e.steps = steps.New(cfg, e.instances, objects, setup.Accounts(cfg, log), m, log)
	return e, nil
}
