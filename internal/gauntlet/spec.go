package gauntlet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrSpec is the error of a matrix file or axis value that cannot be
// read.
var ErrSpec = errors.New("gauntlet: bad matrix")

// MaxRepeat bounds --repeat.
const MaxRepeat = 10000

// maxMatrixFile bounds a matrix file; maxCells the matrix.
const (
	maxMatrixFile = 1 << 20
	maxCells      = 100000
)

// Spec is what a gauntlet tests: the axes, each a list of values as the
// user wrote them, and how often each cell runs. The matrix is every
// combination of kernel, scheduler, topology and scenario.
type Spec struct {
	Scenarios  []string // canned names or scenario files
	Topologies []string // preset names or N,L,C,T
	// Schedulers are SPEC [ktstr-boot option]... (see ParseScheduler).
	Schedulers []string
	Kernels    []string // project, debian, NAME=PATH or a path
	Repeat     int      // 0: 1
}

// ParseMatrix reads a matrix file: one axis per line, "#" starts a
// comment, values are separated by white space.
//
//	scenario steady cpuset-split my-scenario.json
//	topology 1,1,2,1 tiny-2llc
//	scheduler eevdf
//	scheduler scx_simple
//	scheduler qmap-err=/path/to/scx_qmap --sched-arg=-e --sched-arg=300
//	kernel project debian
//	repeat 3
//
// scenario, topology and kernel lines add each value to their axis (the
// keys may repeat); a scheduler line is one scheduler, its spec and the
// ktstr-boot options it runs with; repeat is given once.
func ParseMatrix(r io.Reader) (Spec, error) {
	var s Spec
	sc := bufio.NewScanner(io.LimitReader(r, maxMatrixFile+1))
	sc.Buffer(make([]byte, 64<<10), maxMatrixFile)
	line, read := 0, 0
	for sc.Scan() {
		line++
		read += len(sc.Bytes()) + 1
		if read > maxMatrixFile {
			return Spec{}, fmt.Errorf("%w: larger than %d bytes", ErrSpec, maxMatrixFile)
		}
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrSpec, line, fmt.Sprintf(format, a...))
		}
		if len(f) == 1 {
			return Spec{}, bad("%s without a value", f[0])
		}
		switch f[0] {
		case "scenario":
			s.Scenarios = append(s.Scenarios, f[1:]...)
		case "topology":
			s.Topologies = append(s.Topologies, f[1:]...)
		case "kernel":
			s.Kernels = append(s.Kernels, f[1:]...)
		case "scheduler":
			s.Schedulers = append(s.Schedulers, strings.Join(f[1:], " "))
		case "repeat":
			if s.Repeat != 0 {
				return Spec{}, bad("repeat given twice")
			}
			n, err := ParseRepeat(strings.Join(f[1:], " "))
			if err != nil {
				return Spec{}, bad("%v", err)
			}
			s.Repeat = n
		default:
			return Spec{}, bad("unknown key %q: want scenario, topology, scheduler, kernel or repeat", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return Spec{}, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	return s, nil
}

// ParseRepeat reads a repeat count, 1 to MaxRepeat.
func ParseRepeat(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxRepeat {
		return 0, fmt.Errorf("repeat %q: want 1 to %d", v, MaxRepeat)
	}
	return n, nil
}

// Override returns s with every axis o gives replacing s's (the command
// line over a matrix file).
func (s Spec) Override(o Spec) Spec {
	if len(o.Scenarios) > 0 {
		s.Scenarios = o.Scenarios
	}
	if len(o.Topologies) > 0 {
		s.Topologies = o.Topologies
	}
	if len(o.Schedulers) > 0 {
		s.Schedulers = o.Schedulers
	}
	if len(o.Kernels) > 0 {
		s.Kernels = o.Kernels
	}
	if o.Repeat > 0 {
		s.Repeat = o.Repeat
	}
	return s
}

// reservedOptions are the ktstr-boot options the gauntlet sets for each
// cell itself; a scheduler entry may not give them.
var reservedOptions = map[string]bool{
	"--kernel": true, "-k": true, "--scenario": true, "-s": true, "--scheduler": true,
	"--topology": true, "-t": true, "--cpus": true, "--run-dir": true, "--keep": true,
	"--list-scenarios": true, "--list-topologies": true, "--help": true, "-h": true,
}

// SchedulerEntry is one value of the scheduler axis.
type SchedulerEntry struct {
	// Spec is "eevdf" (the kernel's own scheduler), NAME=PATH, a path
	// (anything with a "/"), or a name looked up in the schedulers
	// make schedulers built.
	Spec string
	// Options are ktstr-boot options for its runs, each one word,
	// "--name=value" or "--name" ("--sched-arg=-e"). "{repeat}" in one
	// becomes the run's repeat number (1, 2, ...).
	Options []string
}

// ParseScheduler reads "SPEC [ktstr-boot option]...".
func ParseScheduler(v string) (SchedulerEntry, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return SchedulerEntry{}, fmt.Errorf("%w: empty scheduler", ErrSpec)
	}
	e := SchedulerEntry{Spec: f[0], Options: f[1:]}
	if strings.HasPrefix(e.Spec, "-") {
		return SchedulerEntry{}, fmt.Errorf("%w: scheduler %q: the spec (eevdf, NAME=PATH, a path or a name) comes first", ErrSpec, v)
	}
	for _, o := range e.Options {
		name, _, _ := strings.Cut(o, "=")
		if !strings.HasPrefix(o, "--") {
			return SchedulerEntry{}, fmt.Errorf("%w: scheduler %q: option %q: want --name=value or --name", ErrSpec, v, o)
		}
		if reservedOptions[name] {
			return SchedulerEntry{}, fmt.Errorf("%w: scheduler %q: %s is set by the gauntlet for each cell", ErrSpec, v, name)
		}
	}
	return e, nil
}
