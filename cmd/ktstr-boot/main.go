// Command ktstr-boot boots a kernel with an initramfs it builds (itself as
// /init), runs a scheduler scenario in the guest and exposes the guest's
// frames through a shared-memory region file. Inside the guest the same
// binary is the agent. See ktstr-boot(1).
package main

import (
	"io"
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/boot"
	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/guest"
)

const name = "ktstr-boot"

func main() {
	if guest.IsGuest() {
		guest.Main() // never returns
	}
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := cli.App(name, "boot a kernel and run a scheduler scenario in it", stdout, stderr)
	app.UsageText = name + " [options]"
	app.Flags = []ucli.Flag{
		&ucli.StringFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "bzImage to boot (default: $KTSTR_KERNEL, the `make kernel` build, or Debian's cached kernel)"},
		&ucli.StringFlag{Name: "scenario", Aliases: []string{"s"}, Value: "steady", Usage: "scenario to run in the guest"},
		&ucli.StringFlag{Name: "run-dir", Usage: "run directory for the region, control socket and logs (default: a new directory under $TMPDIR)"},
		&ucli.DurationFlag{Name: "timeout", Value: 120 * time.Second, Usage: "watchdog: hard deadline for the whole VM"},
		&ucli.IntFlag{Name: "cpus", Value: 2, Usage: "vCPUs"},
		&ucli.IntFlag{Name: "memory", Value: 512, Usage: "guest memory in MiB"},
		&ucli.StringFlag{Name: "vmm", Value: "auto", Usage: "backend: auto, qemu (software emulation), qemu-kvm"},
		&ucli.StringFlag{Name: "append", Usage: "extra kernel command line"},
		&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "kernel messages on the console log"},
	}
	app.Before = cli.NoArgs
	app.Action = func(c *ucli.Context) error {
		kernel := c.String("kernel")
		if kernel == "" {
			k, err := boot.DefaultKernel()
			if err != nil {
				return cli.Usagef("%v", err)
			}
			kernel = k
		}
		dir := c.String("run-dir")
		if dir == "" {
			d, err := os.MkdirTemp("", "ktstr-run-")
			if err != nil {
				return cli.Exitf(boot.ExitVMM, "%v", err)
			}
			dir = d
		}
		dir, _ = filepath.Abs(dir)
		cfg := boot.Config{
			Kernel: kernel, Scenario: c.String("scenario"), RunDir: dir, Timeout: c.Duration("timeout"),
			CPUs: c.Int("cpus"), MemoryMB: c.Int("memory"), VMM: c.String("vmm"), Append: c.String("append"),
			Verbose: c.Bool("verbose"),
			Log:     func(f string, a ...any) { cli.Errorf(stderr, name, f, a...) },
		}
		cli.Errorf(stderr, name, "run directory %s", dir)
		res, err := boot.Run(cfg)
		if err != nil {
			return cli.Exitf(boot.ExitVMM, "%v", err)
		}
		if code := res.ExitCode(); code != 0 {
			return cli.Silent(code)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}
