// Command ktstr-dispatch reads raw frames on stdin, applies ktstr's
// dispatcher gates and writes records on stdout; with --control it also
// forwards side effects to ktstr-boot. See ktstr-dispatch(1).
package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/control"
	"github.com/ktstr-go/ktstr/internal/dispatch"
	"github.com/ktstr-go/ktstr/lib/record"
)

const name = "ktstr-dispatch"

// ExitIO: reading stdin or writing stdout failed.
const ExitIO = 4

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	app := cli.App(name, "apply ktstr's dispatcher gates to raw frames", stdout, stderr)
	app.UsageText = name + " [--json] [--control SOCKET] [--workload DURATION] [--kernel-text-link ADDR] [-q] < frames > records"
	app.Flags = []ucli.Flag{
		&ucli.BoolFlag{Name: "json", Usage: "write JSON lines instead of msgpack"},
		&ucli.StringFlag{Name: "control", Usage: "forward effects to ktstr-boot's control socket"},
		&ucli.DurationFlag{Name: "control-wait", Value: 5 * time.Second, Usage: "how long to wait for the control socket to appear"},
		&ucli.DurationFlag{Name: "workload", Usage: "watchdog budget: SCST, SCRR and SCEN move the deadline (0: not wired)"},
		&ucli.StringFlag{Name: "kernel-text-link", Usage: "link-time address of _text (hex), enables the virtual KASLR offset"},
		&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no summary line on stderr"},
	}
	app.Before = cli.NoArgs
	app.Action = func(c *ucli.Context) error {
		opts := dispatch.Options{Config: dispatch.Config{Workload: c.Duration("workload")}}
		if s := c.String("kernel-text-link"); s != "" {
			v, err := strconv.ParseUint(trimHex(s), 16, 64)
			if err != nil {
				return cli.Usagef("--kernel-text-link %q: not a hex address", s)
			}
			opts.TextLink = v
		}
		if sock := c.String("control"); sock != "" {
			cl, err := control.Dial(sock, c.Duration("control-wait"))
			if err != nil {
				// ktstr-boot may have failed before the VM started, or
				// already finished; the records (its VEND among them) are
				// still worth delivering.
				cli.Errorf(stderr, name, "control socket: %v; effects are not forwarded", err)
			}
			gone := cl == nil
			if cl != nil {
				defer cl.Close()
			}
			opts.Effects = func(r *record.Record) error {
				if gone {
					return nil
				}
				if err := cl.Send(r); err != nil {
					gone = true // ktstr-boot has finished; records still flow
					if !errors.Is(err, control.ErrGone) {
						return err
					}
				}
				return nil
			}
		}
		signal.Ignore(syscall.SIGPIPE) // a closed stdout comes back as EPIPE
		w := record.NewWriter(stdout, c.Bool("json"))
		opts.FlushEachRead = isPipeOrTTY(stdout)
		sum, err := dispatch.Run(stdin, w, opts)
		if !c.Bool("quiet") {
			cli.Errorf(stderr, name, "%v", sum)
		}
		if errors.Is(err, dispatch.ErrOutputClosed) {
			return nil
		}
		if err != nil {
			return cli.Exitf(ExitIO, "%v", err)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}

func trimHex(s string) string {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		return s[2:]
	}
	return s
}

// isPipeOrTTY reports whether w is a pipe, socket or terminal, where a
// reader waits for each record; records to a file are batched.
func isPipeOrTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	m := st.Mode()
	return m&(os.ModeNamedPipe|os.ModeSocket|os.ModeCharDevice) != 0
}
