// Package cli is what the four commands share: one place that maps errors
// to exit statuses, urfave/cli configured for data streams (help on stdout
// only when asked for, a usage error as one line on stderr and status 2),
// and one-line diagnostics prefixed with the tool's name, sanitised.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/sanitize"
)

// Exit statuses shared by every tool. Tools document their own codes
// from 3 upwards.
const (
	ExitOK    = 0
	ExitFail  = 1 // the tool's job failed (see its man page)
	ExitUsage = 2 // bad command line
)

// ExitError is an error with the exit status it maps to.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exitf returns an ExitError with a formatted message.
func Exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// Usagef returns a usage error (exit status 2).
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Silent is an ExitError whose message was already printed.
func Silent(code int) error { return &ExitError{Code: code} }

// App returns a urfave/cli app set up for a data-stream tool.
func App(name, usage string, stdout, stderr io.Writer) *ucli.App {
	app := &ucli.App{
		Name:                 name,
		Usage:                usage,
		Writer:               stdout, // --help, --version: asked for, so stdout
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*ucli.Context, error) {}, // never os.Exit inside the library
		OnUsageError: func(_ *ucli.Context, err error, _ bool) error {
			return &ExitError{Code: ExitUsage, Err: err}
		},
	}
	return app
}

// Run runs app and returns the exit status, printing one diagnostic line
// for an error. Only this function decides exit statuses.
func Run(app *ucli.App, args []string, stderr io.Writer) int {
	err := app.Run(args)
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			Errorf(stderr, app.Name, "%v", ee.Err)
		}
		return ee.Code
	}
	// Anything urfave/cli returns by itself (unknown flag, missing
	// required flag, bad value) is a usage error.
	Errorf(stderr, app.Name, "%v (see %s --help)", err, app.Name)
	return ExitUsage
}

// Errorf writes one diagnostic line "name: message" to w. Newlines in the
// message are folded so it stays one line, and the message goes through
// sanitize.String, since it may quote what a guest wrote: it cannot steer
// the terminal.
func Errorf(w io.Writer, name, format string, args ...any) {
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	fmt.Fprintf(w, "%s: %s\n", name, sanitize.String(msg))
}

// NoArgs is a Before hook that refuses positional arguments.
func NoArgs(c *ucli.Context) error {
	if c.NArg() > 0 {
		return Usagef("unexpected argument %q", c.Args().First())
	}
	return nil
}
