// Command ktstr-drain copies raw frames out of a ktstr region to stdout,
// byte-exact, between the host frames it writes itself (HELO first, the
// LOSS and VEND trailer last). See ktstr-drain(1).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/lib/shm"
)

const name = "ktstr-drain"

// ExitRegion: the region could not be opened, its ring is corrupt, or
// stdout failed with an error other than a closed reader.
const ExitRegion = 4

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	app := cli.App(name, "copy raw frames out of a ktstr region to stdout", stdout, stderr)
	app.UsageText = name + " [--follow] [--wait DURATION] REGION\n" + name + " [--follow] [--wait DURATION] --fd N"
	app.Flags = []ucli.Flag{
		&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "wait for more frames until ktstr-boot closes the region and it is empty"},
		&ucli.IntFlag{Name: "fd", Value: -1, Usage: "map the region open read-write on inherited file descriptor N instead of a path"},
		&ucli.DurationFlag{Name: "wait", Usage: "wait up to DURATION for the region to appear and be initialised"},
	}
	app.Action = func(c *ucli.Context) error {
		fd := c.Int("fd")
		var open func() (*shm.Region, error)
		var hostFrames string
		switch {
		case fd < -1:
			return cli.Usagef("--fd %d: want a descriptor number", fd)
		case fd >= 0 && c.NArg() > 0:
			return cli.Usagef("give either REGION or --fd, not both")
		case fd >= 0:
			f := os.NewFile(uintptr(fd), fmt.Sprintf("fd %d", fd))
			defer f.Close()
			open = func() (*shm.Region, error) { return shm.OpenFile(f) }
		case c.NArg() == 1:
			path := c.Args().First()
			open = func() (*shm.Region, error) { return shm.Open(path) }
			hostFrames = filepath.Join(filepath.Dir(path), drain.HostFramesFile)
		case c.NArg() == 0:
			return cli.Usagef("need a REGION path or --fd N")
		default:
			return cli.Usagef("need exactly one REGION path, got %d arguments", c.NArg())
		}
		region, err := openWait(open, c.Duration("wait"))
		if err != nil {
			return cli.Exitf(ExitRegion, "%v", err)
		}
		defer region.Close()

		// The first SIGINT or SIGTERM stops the copy between two writes;
		// a second one has its default effect. SIGPIPE is caught so that
		// a closed reader comes back from write as EPIPE.
		stop := make(chan struct{})
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				if s != syscall.SIGPIPE {
					signal.Reset(syscall.SIGINT, syscall.SIGTERM)
					close(stop)
					return
				}
			}
		}()
		growPipe(stdout)
		alive, release := drain.BootWatch(region.BootPID(), region.BootStart())
		defer release()
		st, err := drain.Run(region, stdout, drain.Options{Follow: c.Bool("follow"), Stop: stop, BootAlive: alive, HostFrames: hostFrames})
		if st.DropFrames > 0 || st.DropBytes > 0 {
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

// growPipe raises the capacity of stdout to 1 MiB when it is a pipe, so
// that the drain and its reader switch less often. Failure is harmless.
func growPipe(w io.Writer) {
	if f, ok := w.(*os.File); ok {
		unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	}
}

// openWait calls open until it succeeds or wait has passed.
func openWait(open func() (*shm.Region, error), wait time.Duration) (*shm.Region, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := open()
		if err == nil || !time.Now().Before(deadline) {
			return r, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
