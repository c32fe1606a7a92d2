// Command ktstr-boot boots a kernel with an initramfs it builds (itself as
// /init), runs a scheduler scenario in the guest and exposes the guest's
// frames through a shared-memory region file. Inside the guest the same
// binary is the agent, and its workers are the same binary re-executed.
// See ktstr-boot(1).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/boot"
	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/guest"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
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
	// Paths and scheduler arguments may hold commas: a repeated flag
	// gives one value each time, never split.
	app.DisableSliceFlagSeparator = true
	app.Flags = []ucli.Flag{
		&ucli.StringFlag{Name: "kernel", Aliases: []string{"k"}, Usage: "`bzImage` to boot (default: $KTSTR_KERNEL, the kernel built by make kernel, or Debian's cached kernel)"},
		&ucli.StringFlag{Name: "vmlinux", Usage: "the kernel's `vmlinux` (ELF symbols and BTF) for snapshots, kernel ops, failure dumps and the monitor (default: vmlinux next to the kernel, if there is one; none: none)"},
		&ucli.StringFlag{Name: "scenario", Aliases: []string{"s"}, Value: scenario.Default, Usage: "canned scenario `name|file` (JSON, at most 1 MiB)"},
		&ucli.BoolFlag{Name: "list-scenarios", Usage: "print the canned scenarios and exit"},
		&ucli.StringFlag{Name: "scheduler", Usage: "scheduler `binary` to test (packed with its shared libraries); default: the kernel's own"},
		&ucli.StringSliceFlag{Name: "sched-arg", Usage: "`arg`ument for the scheduler (repeat for several)"},
		&ucli.StringFlag{Name: "replacement", Usage: "scheduler `binary` the scenario's replace_scheduler op puts in place of --scheduler mid-run"},
		&ucli.StringSliceFlag{Name: "replacement-arg", Usage: "`arg`ument for the replacement (repeat for several)"},
		&ucli.DurationFlag{Name: "attach-timeout", Usage: "how long (`duration`) the scheduler may take to attach, more than 0 and at most 24h (default: 30s under KVM and on the host, 90s under software emulation)"},
		&ucli.StringSliceFlag{Name: "include", Usage: "extra file for the initramfs, `SRC[:DST]`, a regular file of at most 256 MiB (repeat)"},
		&ucli.StringFlag{Name: "run-dir", Usage: "run `dir`ectory for the region, control socket and logs (default: a new directory under $TMPDIR, removed at the end unless the run fails or --keep is given)"},
		&ucli.BoolFlag{Name: "keep", Usage: "keep the default run directory after a run that passed"},
		&ucli.DurationFlag{Name: "timeout", Value: boot.DefaultTimeout, Usage: "watchdog: hard deadline (`duration`) for the whole VM, more than 0 and at most 24h"},
		&ucli.IntFlag{Name: "cpus", Value: 2, Usage: fmt.Sprintf("`n` vCPUs, 1 to %d: shorthand for --topology 1,1,N,1", topology.MaxCPUs)},
		&ucli.StringFlag{Name: "topology", Aliases: []string{"t"}, Usage: "machine `shape` N,L,C,T (NUMA nodes, LLCs in all, cores per LLC, threads per core) or a preset name (--list-topologies)"},
		&ucli.BoolFlag{Name: "list-topologies", Usage: "print the topology presets and exit"},
		&ucli.StringFlag{Name: "numa-memory", Usage: "memory of each NUMA node, `MiB,MiB,...` (default: --memory split evenly)"},
		&ucli.StringFlag{Name: "numa-distance", Usage: "NUMA distance `matrix`, row by row (\"10,20;20,10\"; default 10 local, 20 remote)"},
		&ucli.IntFlag{Name: "memory", Value: 512, Usage: fmt.Sprintf("guest memory in `MiB`, %d to %d (default 512, a preset's own, or more for many vCPUs or nodes)", boot.MinMemoryMB, boot.MaxMemoryMB)},
		&ucli.StringFlag{Name: "vmm", Value: "auto", Usage: "`backend`: auto, own (ktstr-boot's KVM VMM), qemu (software emulation), qemu-kvm, host (no VM)"},
		&ucli.StringFlag{Name: "machine", Value: "auto", Usage: "QEMU `type`: auto (microvm for one NUMA node, pc for more), microvm, pc; the own VMM has its own"},
		&ucli.StringFlag{Name: "append", Usage: "extra kernel command line `text`"},
		&ucli.BoolFlag{Name: "allow-software-kvm", Usage: "let --vmm own run on a software KVM (PVM) that cannot boot a stock kernel, for a guest program"},
		&ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "kernel messages on the console log"},
		&ucli.StringFlag{Name: "exec", Aliases: []string{"e"}, Usage: "run `CMD` in the guest instead of a scenario (scheduler attached first, if given): its output on stdout, the scheduler's on stderr, its exit status ktstr-boot's"},
		&ucli.BoolFlag{Name: "shell", Usage: "an interactive shell in the guest on this terminal instead of a scenario (busybox if the host has it, else sh; $KTSTR_SHELL picks another); Ctrl-A x ends the VM"},
		&ucli.StringFlag{Name: "hostile", Usage: "test mode: the agent is a hostile guest that runs these `attacks` instead of the scenario (all, or some of " + strings.Join(guest.HostileAttacks(), ",") + ")"},
	}
	app.Before = cli.NoArgs
	app.Action = func(c *ucli.Context) error {
		// --exec and --shell: the command's exit status, not the run's.
		var exitStatus func(boot.Result) (int, error)
		if c.Bool("list-scenarios") {
			var lines []string
			for _, n := range scenario.Names() {
				s, _, err := scenario.Load(n)
				if err != nil {
					return cli.Exitf(cli.ExitFail, "%v", err)
				}
				lines = append(lines, fmt.Sprintf("%-18s %s\n", n, s.Description))
			}
			return writeList(stdout, lines)
		}
		if c.Bool("list-topologies") {
			var lines []string
			for _, p := range topology.Presets() {
				lines = append(lines, fmt.Sprintf("%-20s %-10s %5d MiB  %s\n", p.Name, p.Topology, p.MemoryMB, p.Description))
			}
			return writeList(stdout, lines)
		}
		switch vmm := c.String("vmm"); vmm {
		case "auto", "own", "qemu", "qemu-kvm", "host":
		default:
			return cli.Usagef("--vmm %q: want auto, own, qemu, qemu-kvm or host", vmm)
		}
		interactive := c.IsSet("exec") || c.Bool("shell")
		switch {
		case c.IsSet("exec") && c.Bool("shell"):
			return cli.Usagef("--exec and --shell both given: one command or a shell")
		case interactive && c.IsSet("scenario"):
			return cli.Usagef("--scenario with --exec or --shell: the command replaces the scenario")
		case interactive && c.IsSet("hostile"):
			return cli.Usagef("--hostile with --exec or --shell")
		case interactive && c.String("vmm") == "host":
			return cli.Usagef("--exec and --shell run in a VM, not with --vmm host")
		case c.Bool("shell") && c.String("vmm") == "own":
			return cli.Usagef("--shell needs a QEMU backend (--vmm qemu or qemu-kvm): the own VMM takes no terminal input")
		}
		shape, memory, err := machineShape(c)
		if err != nil {
			return err
		}
		machine, err := boot.ParseMachine(c.String("machine"), shape)
		if err != nil {
			return cli.Usagef("--machine: %v", err)
		}
		if c.String("vmm") == "own" {
			if err := boot.CheckOwnVMM(c.Bool("allow-software-kvm")); err != nil {
				return cli.Exitf(boot.ExitVMM, "%v", err)
			}
		}
		cfg := boot.Config{
			Self:    os.Getenv("KTSTR_INIT"),
			Timeout: c.Duration("timeout"), Topology: shape, MemoryMB: memory,
			VMM: c.String("vmm"), Machine: machine, Append: c.String("append"), Verbose: c.Bool("verbose"),
			Log: func(f string, a ...any) { cli.Errorf(stderr, name, f, a...) },
		}
		if c.Bool("shell") && !c.IsSet("timeout") {
			cfg.Timeout = boot.MaxTimeout // a shell lasts as long as its user
		}
		for _, f := range []string{"timeout", "attach-timeout"} {
			if d := c.Duration(f); (f == "timeout" || c.IsSet(f)) && (d <= 0 || d > boot.MaxTimeout) {
				return cli.Usagef("--%s %v: want more than 0 and at most %v", f, d, boot.MaxTimeout)
			}
		}
		// The scenario is validated here, so a typo is a usage error on the
		// host rather than a failing run.
		sc := c.String("scenario")
		parsed, b, err := scenario.Load(sc)
		if err != nil {
			return cli.Usagef("--scenario: %v", err)
		} else if scenario.IsFile(sc) {
			cfg.Guest.ScenarioJSON = b
		} else {
			cfg.Guest.Scenario = sc
		}
		if parsed.Monitor != nil {
			th := parsed.Monitor.Thresholds()
			cfg.Monitor = &th
		}
		if cfg.VMM != "host" {
			cfg.Guest.Topology, cfg.Guest.MemoryMB = &cfg.Topology, cfg.MemoryMB
		}
		cfg.Guest.AttachTimeoutMS = int(c.Duration("attach-timeout").Milliseconds())
		if c.IsSet("hostile") {
			if cfg.Guest.Hostile, err = guest.ParseHostile(c.String("hostile")); err != nil {
				return cli.Usagef("--hostile: %v", err)
			}
		}
		// Every file takes a name of its own in the initramfs: a clash is
		// refused here, not resolved by skipping a file.
		layout := boot.NewLayout()
		if bin := c.String("scheduler"); bin != "" {
			if cfg.VMM == "host" {
				cfg.Guest.Scheduler, _ = filepath.Abs(bin)
			} else {
				files, dst, err := boot.SchedulerFiles(bin)
				for _, f := range files {
					if err == nil {
						err = layout.Add(f)
					}
				}
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
		if bin := c.String("replacement"); bin != "" {
			if c.String("scheduler") == "" {
				return cli.Usagef("--replacement needs --scheduler")
			}
			if cfg.VMM == "host" {
				cfg.Guest.Replacement, _ = filepath.Abs(bin)
			} else {
				files, dst, err := boot.SchedulerFiles(bin)
				// Libraries both schedulers use are packed once.
				have := map[string]string{}
				for _, f := range cfg.Files {
					have[f.Dst] = f.Src
				}
				for _, f := range files {
					if src, ok := have[f.Dst]; err == nil && ok && src == f.Src {
						continue
					}
					if err == nil {
						err = layout.Add(f)
					}
					if err == nil {
						cfg.Files = append(cfg.Files, f)
					}
				}
				if err != nil {
					return cli.Usagef("--replacement: %v", err)
				}
				cfg.Guest.Replacement = dst
			}
			cfg.Guest.ReplacementArgs = c.StringSlice("replacement-arg")
		} else if len(c.StringSlice("replacement-arg")) > 0 {
			return cli.Usagef("--replacement-arg needs --replacement")
		}
		if interactive {
			var files []boot.File
			var argv []string
			if c.Bool("shell") {
				files, argv, err = boot.ShellCommand(os.Getenv("KTSTR_SHELL"))
			} else if argv, err = boot.SplitCommand(c.String("exec")); err == nil {
				files, argv, err = boot.CommandFiles(argv)
			}
			for _, f := range files {
				added := false
				if err == nil {
					added, err = layout.AddShared(f) // its libraries may be the scheduler's
				}
				if added && err == nil {
					cfg.Files = append(cfg.Files, f)
				}
			}
			if err != nil {
				if c.Bool("shell") {
					return cli.Usagef("--shell: %v", err)
				}
				return cli.Usagef("--exec: %v", err)
			}
			cfg.Guest.Exec, cfg.Guest.Shell, cfg.Guest.Term = argv, c.Bool("shell"), os.Getenv("TERM")
			cfg.Guest.Scenario, cfg.Guest.ScenarioJSON, cfg.Monitor = "", nil, nil
			frames := &boot.Frames{Sched: stderr}
			cfg.Frames, cfg.Shell = frames, c.Bool("shell")
			if !cfg.Shell {
				cfg.COM2Out = stdout
			}
			exitStatus = func(res boot.Result) (int, error) {
				code, ok := frames.ExitCode()
				if !ok {
					return boot.ExitVMM, fmt.Errorf("the VM ended (%v%s) before the command's exit status came back", res.Reason, detailOf(res))
				}
				return int(uint8(code)), nil
			}
		}
		for _, inc := range c.StringSlice("include") {
			f, err := boot.IncludeFile(inc)
			if err == nil {
				err = layout.Add(f)
			}
			if err != nil {
				return cli.Usagef("--include %s: %v", inc, err)
			}
			cfg.Files = append(cfg.Files, f)
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
			if err := boot.CheckKernel(kernel); err != nil {
				return cli.Usagef("--kernel %s: %v", kernel, err)
			}
			if c.String("scheduler") != "" {
				if err := boot.CheckSchedExt(kernel); err != nil {
					return cli.Usagef("--kernel %s: %v", kernel, err)
				}
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
		dir, temp := c.String("run-dir"), false
		if dir != "" {
			d, err := filepath.Abs(dir)
			if err == nil {
				err = boot.CheckRunDirPath(d)
			}
			if err != nil {
				return cli.Usagef("--run-dir: %v", err)
			}
			dir = d
		} else {
			d, err := boot.TempRunDir()
			if errors.Is(err, boot.ErrRunDir) {
				return cli.Usagef("%v (set TMPDIR to a shorter directory, or pass --run-dir)", err)
			}
			if err != nil {
				return cli.Exitf(boot.ExitVMM, "%v", err)
			}
			dir, temp = d, true
		}
		cfg.RunDir = dir
		if temp {
			cli.Errorf(stderr, name, "run directory %s (removed at the end unless the run fails or --keep is given)", dir)
		} else {
			cli.Errorf(stderr, name, "run directory %s", dir)
		}
		res, err := boot.Run(cfg)
		code := res.ExitCode()
		if err != nil {
			code = boot.ExitVMM
		} else if exitStatus != nil {
			code, err = exitStatus(res)
		}
		failed := code != 0
		if exitStatus != nil {
			failed = err != nil // the command's own status is not the run's
		}
		switch {
		case !temp:
		case failed:
			cli.Errorf(stderr, name, "run directory %s kept: the run failed", dir)
		case c.Bool("keep"):
			cli.Errorf(stderr, name, "run directory %s kept (--keep)", dir)
		default:
			if err := os.RemoveAll(dir); err != nil {
				cli.Errorf(stderr, name, "remove run directory: %v", err)
			}
		}
		if err != nil {
			return cli.Exitf(code, "%v", err)
		}
		if code != 0 {
			return cli.Silent(code)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}

// detailOf is a result's detail for a message, "" when it has none.
func detailOf(res boot.Result) string {
	if res.Detail == "" {
		return ""
	}
	return ": " + res.Detail
}

// writeList writes a listing to stdout. A reader that has gone (| head
// -1) is a clean end: the write comes back as EPIPE instead of SIGPIPE
// killing us.
func writeList(stdout io.Writer, lines []string) error {
	signal.Ignore(syscall.SIGPIPE)
	for _, l := range lines {
		if _, err := io.WriteString(stdout, l); err != nil {
			if errors.Is(err, syscall.EPIPE) {
				return nil
			}
			return cli.Exitf(cli.ExitFail, "%v", err)
		}
	}
	return nil
}

// machineShape reads --topology (or its shorthand --cpus), --memory and
// the NUMA options into a validated shape and the VM's memory.
func machineShape(c *ucli.Context) (topology.Topology, int, error) {
	var (
		t      topology.Topology
		memory = c.Int("memory")
		err    error
	)
	if memory < boot.MinMemoryMB || memory > boot.MaxMemoryMB {
		return t, 0, cli.Usagef("--memory %d: want %d to %d (MiB)", memory, boot.MinMemoryMB, boot.MaxMemoryMB)
	}
	switch {
	case c.IsSet("topology") && c.IsSet("cpus"):
		return t, 0, cli.Usagef("--cpus and --topology both given: --cpus N is --topology 1,1,N,1")
	case c.IsSet("topology"):
		if t, err = topology.Parse(c.String("topology")); err != nil {
			return t, 0, cli.Usagef("--topology: %v", err)
		}
		if p, ok := topology.Preset(c.String("topology")); ok && !c.IsSet("memory") {
			memory = p.MemoryMB
		}
	default:
		if t, err = topology.New(1, 1, c.Int("cpus"), 1); err != nil {
			return t, 0, cli.Usagef("--cpus %d: want 1 to %d", c.Int("cpus"), topology.MaxCPUs)
		}
	}
	if s := c.String("numa-memory"); s != "" {
		if t.NodeMemoryMB, err = topology.ParseNodeMemory(s, t.Nodes); err != nil {
			return t, 0, cli.Usagef("--numa-memory: %v", err)
		}
		sum := t.DefaultMemoryMB()
		if c.IsSet("memory") && memory != sum {
			return t, 0, cli.Usagef("--numa-memory adds up to %d MiB, --memory says %d", sum, memory)
		}
		memory = sum
	}
	if s := c.String("numa-distance"); s != "" {
		if t.Distances, err = topology.ParseDistances(s, t.Nodes); err != nil {
			return t, 0, cli.Usagef("--numa-distance: %v", err)
		}
	}
	if !c.IsSet("memory") && t.NodeMemoryMB == nil {
		memory = max(memory, t.DefaultMemoryMB())
	}
	if _, err := t.NodeMemory(memory); err != nil {
		return t, 0, cli.Usagef("--memory %d: %v", memory, err)
	}
	if err := boot.CheckTopology(c.String("vmm"), t); err != nil {
		return t, 0, cli.Usagef("--topology: %v", err)
	}
	return t, memory, nil
}
