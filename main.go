// Command recording-storage moves meeting recordings from AWS S3 into encrypted
// DRACOON rooms, driven by queue messages. Besides the service itself it offers
// operator tools; run it without arguments for the list.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
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
