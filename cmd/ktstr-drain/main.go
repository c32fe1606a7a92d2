// Command ktstr-drain copies raw frames out of a ktstr region to stdout,
// byte-exact. See ktstr-drain(1).
package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/lib/shm"
)

const name = "ktstr-drain"

// ExitRegion: the region could not be opened or its ring is corrupt.
const ExitRegion = 4

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout *os.File, stderr io.Writer) int {
	app := cli.App(name, "copy raw frames out of a ktstr region to stdout", stdout, stderr)
	app.UsageText = name + " [--follow] [--wait DURATION] REGION | --fd N"
	app.Flags = []ucli.Flag{
		&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "wait for more frames until ktstr-boot closes the region and it is empty"},
		&ucli.IntFlag{Name: "fd", Value: -1, Usage: "read the region from inherited file descriptor N instead of a path"},
		&ucli.DurationFlag{Name: "wait", Usage: "wait up to DURATION for REGION to appear and be initialised"},
	}
	app.Action = func(c *ucli.Context) error {
		fd := c.Int("fd")
		var region *shm.Region
		var err error
		switch {
		case fd >= 0 && c.NArg() > 0:
			return cli.Usagef("give either REGION or --fd, not both")
		case fd >= 0:
			f := os.NewFile(uintptr(fd), "region")
			if f == nil {
				return cli.Usagef("--fd %d: not an open descriptor", fd)
			}
			region, err = shm.OpenFile(f)
		case c.NArg() == 1:
			region, err = openWait(c.Args().First(), c.Duration("wait"))
		default:
			return cli.Usagef("need exactly one REGION path (or --fd N)")
		}
		if err != nil {
			return cli.Exitf(ExitRegion, "%v", err)
		}
		defer region.Close()

		stop := make(chan struct{})
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				if s != syscall.SIGPIPE { // EPIPE comes back from write
					close(stop)
					return
				}
			}
		}()
		pid := region.BootPID()
		st, err := drain.Run(region, stdout, drain.Options{
			Follow: c.Bool("follow"), Stop: stop,
			BootAlive: func() bool { return pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH },
		})
		if st.DropFrames > 0 {
			cli.Errorf(stderr, name, "the guest dropped %d frames (%d bytes): ring full", st.DropFrames, st.DropBytes)
		}
		if errors.Is(err, drain.ErrOutputClosed) {
			return nil // the reader went away: a clean end
		}
		if err != nil {
			return cli.Exitf(ExitRegion, "%v", err)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}

// openWait opens the region at path, retrying until it exists with a
// valid header or wait has passed.
func openWait(path string, wait time.Duration) (*shm.Region, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := shm.Open(path)
		if err == nil || time.Now().After(deadline) {
			return r, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
