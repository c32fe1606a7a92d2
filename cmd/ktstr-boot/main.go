// Command ktstr-boot boots a kernel with an initramfs it builds (itself as
// /init), runs a scheduler scenario in the guest and exposes the guest's
// frames through a shared-memory region file. Inside the guest the same
// binary is the agent, and its workers are the same binary re-executed.
// See ktstr-boot(1).
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/boot"
	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/guest"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/workload"
)

const name = "ktstr-boot"

func main() {
	if workload.IsWorker(os.Args) {
		os.Exit(workload.WorkerMain(os.Args))
	}
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
		&ucli.StringFlag{Name: "vmlinux", Usage: "the kernel's vmlinux (ELF symbols and BTF) for snapshots and kernel ops (default: vmlinux next to the kernel, if there is one; \"none\": none)"},
		&ucli.StringFlag{Name: "scenario", Aliases: []string{"s"}, Value: "steady", Usage: "canned scenario name, or a scenario file (JSON)"},
		&ucli.BoolFlag{Name: "list-scenarios", Usage: "print the canned scenarios and exit"},
		&ucli.StringFlag{Name: "scheduler", Usage: "scheduler binary to test (packed with its shared libraries); default: the kernel's own"},
		&ucli.StringSliceFlag{Name: "sched-arg", Usage: "argument for the scheduler (repeat for several)"},
		&ucli.DurationFlag{Name: "attach-timeout", Value: 30 * time.Second, Usage: "how long the scheduler may take to attach"},
		&ucli.StringSliceFlag{Name: "include", Usage: "extra file for the initramfs, SRC or SRC:DST (repeat)"},
		&ucli.StringFlag{Name: "run-dir", Usage: "run directory for the region, control socket and logs (default: a new directory under $TMPDIR)"},
		&ucli.DurationFlag{Name: "timeout", Value: 120 * time.Second, Usage: "watchdog: hard deadline for the whole VM"},
		&ucli.IntFlag{Name: "cpus", Value: 2, Usage: "vCPUs"},
		&ucli.IntFlag{Name: "memory", Value: 512, Usage: "guest memory in MiB"},
		&ucli.StringFlag{Name: "vmm", Value: "auto", Usage: "backend: auto, own (ktstr-boot's KVM VMM), qemu (software emulation), qemu-kvm, host (no VM)"},
		&ucli.StringFlag{Name: "append", Usage: "extra kernel command line"},
		&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "kernel messages on the console log"},
	}
	app.Before = cli.NoArgs
	app.Action = func(c *ucli.Context) error {
		if c.Bool("list-scenarios") {
			for _, n := range scenario.Names() {
				s, _, err := scenario.Load(n, guest.ValidateWork)
				if err != nil {
					return cli.Exitf(cli.ExitFail, "%v", err)
				}
				fmt.Fprintf(stdout, "%-18s %s\n", n, s.Description)
			}
			return nil
		}
		cfg := boot.Config{
			Timeout: c.Duration("timeout"), CPUs: c.Int("cpus"), MemoryMB: c.Int("memory"),
			VMM: c.String("vmm"), Append: c.String("append"), Verbose: c.Bool("verbose"),
			Log: func(f string, a ...any) { cli.Errorf(stderr, name, f, a...) },
		}
		switch cfg.VMM {
		case "auto", "own", "qemu", "qemu-kvm", "host":
		default:
			return cli.Usagef("--vmm %q: want auto, own, qemu, qemu-kvm or host", cfg.VMM)
		}
		// The scenario is validated here, so a typo is a usage error on the
		// host rather than a failing run.
		sc := c.String("scenario")
		parsed, b, err := scenario.Load(sc, guest.ValidateWork)
		if err != nil {
			return cli.Usagef("--scenario: %v", err)
		} else if strings.ContainsRune(sc, '/') || strings.HasSuffix(sc, ".json") {
			cfg.Guest.ScenarioJSON = b
		} else {
			cfg.Guest.Scenario = sc
		}
		if parsed.Monitor != nil {
			th := parsed.Monitor.Thresholds()
			cfg.Monitor = &th
		}
		cfg.Guest.AttachTimeoutMS = int(c.Duration("attach-timeout").Milliseconds())
		if bin := c.String("scheduler"); bin != "" {
			if cfg.VMM == "host" {
				cfg.Guest.Scheduler, _ = filepath.Abs(bin)
			} else {
				files, dst, err := boot.SchedulerFiles(bin)
				if err != nil {
					return cli.Usagef("--scheduler: %v", err)
				}
				cfg.Files = append(cfg.Files, files...)
				cfg.Guest.Scheduler = dst
			}
			cfg.Guest.SchedArgs = c.StringSlice("sched-arg")
		} else if len(c.StringSlice("sched-arg")) > 0 {
			return cli.Usagef("--sched-arg needs --scheduler")
		}
		for _, inc := range c.StringSlice("include") {
			src, dst, ok := strings.Cut(inc, ":")
			if !ok {
				dst = "/ktstr/include/" + filepath.Base(src)
			}
			if _, err := os.Stat(src); err != nil {
				return cli.Usagef("--include %s: %v", inc, err)
			}
			cfg.Files = append(cfg.Files, boot.File{Dst: dst, Src: src})
		}
		if cfg.VMM != "host" {
			kernel := c.String("kernel")
			if kernel == "" {
				k, err := boot.DefaultKernel()
				if err != nil {
					return cli.Usagef("%v", err)
				}
				kernel = k
			}
			if st, err := os.Stat(kernel); err != nil || !st.Mode().IsRegular() {
				return cli.Usagef("--kernel %s: not a readable file", kernel)
			}
			cfg.Kernel = kernel
			switch v := c.String("vmlinux"); v {
			case "":
				cfg.Vmlinux = boot.DefaultVmlinux(kernel)
			case "none":
			default:
				if _, err := os.Stat(v); err != nil {
					return cli.Usagef("--vmlinux %s: %v", v, err)
				}
				cfg.Vmlinux = v
			}
		}
		dir := c.String("run-dir")
		if dir == "" {
			d, err := os.MkdirTemp("", "ktstr-run-")
			if err != nil {
				return cli.Exitf(boot.ExitVMM, "%v", err)
			}
			dir = d
		}
		cfg.RunDir, _ = filepath.Abs(dir)
		cli.Errorf(stderr, name, "run directory %s", cfg.RunDir)
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
