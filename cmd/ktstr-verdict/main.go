// Command ktstr-verdict folds ktstr-dispatch's records into a verdict and
// a report; its exit status is the verdict. See ktstr-verdict(1).
package main

import (
	"errors"
	"io"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/internal/verdict"
)

const name = "ktstr-verdict"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := cli.App(name, "fold records into a verdict; the exit status is the verdict", stdout, stderr)
	app.UsageText = name + " [--format text|json] [--name NAME] [RECORDS]"
	app.Flags = []ucli.Flag{
		&ucli.StringFlag{Name: "format", Value: "text", Usage: "report format: text or json"},
		&ucli.StringFlag{Name: "name", Value: "run", Usage: "name of the run in the report"},
	}
	app.Action = func(c *ucli.Context) error {
		format := c.String("format")
		if format != "text" && format != "json" {
			return cli.Usagef("--format %q: want text or json", format)
		}
		if c.NArg() > 1 {
			return cli.Usagef("one RECORDS file at most")
		}
		in := stdin
		if c.NArg() == 1 && c.Args().First() != "-" {
			f, err := os.Open(c.Args().First())
			if err != nil {
				return cli.Exitf(verdict.ExitInfra, "%v", err)
			}
			defer f.Close()
			in = f
		}
		fo := verdict.NewFolder(c.String("name"))
		rd := record.NewReader(in)
		for {
			r, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fo.ReadError(err)
				break
			}
			fo.Add(r)
		}
		v := fo.Verdict()
		var err error
		if format == "json" {
			err = verdict.WriteJSON(stdout, v)
		} else {
			err = verdict.WriteText(stdout, v)
		}
		if err != nil {
			return cli.Exitf(verdict.ExitInfra, "%v", err)
		}
		if code := v.Status.ExitCode(); code != 0 {
			return cli.Silent(code)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}
