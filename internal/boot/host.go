package boot

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/internal/guest"
	"github.com/ktstr-go/ktstr/lib/shm"
)

// hostKillGrace is how long Kill waits for the agent of a host-mode run
// to stop its scenario and remove its workers' cgroup.
const hostKillGrace = 5 * time.Second

// hostVM is host mode (--vmm host) as a machine: the agent runs in this
// process, on a mapping of the region of its own, so that the watchdog,
// the signals and the kill work as they do for a VM. Kill cannot stop a
// goroutine: it asks the agent for a graceful shutdown and waits up to
// hostKillGrace; an agent that does not stop by then is left running on
// its mapping, which is then never unmapped (the process exits soon).
type hostVM struct {
	ctl      *shm.Region // ktstr-boot's mapping, for the control byte
	done     chan struct{}
	returned chan struct{} // closed when the agent returned; err is set
	err      error
	doneOnce sync.Once
	killOnce sync.Once
}

// crashError is a guest failure that ended the run (host mode: the agent
// panicked or returned without finishing).
type crashError struct{ msg string }

func (e *crashError) Error() string { return e.msg }

// startHost starts the agent on its own mapping of the region file; ctl
// is ktstr-boot's mapping of it. The agent's console and COM2 lines go
// to con and com2, as a VM's serial ports would (an abandoned agent may
// still write to them after the run).
func startHost(cfg guest.Config, ctl *shm.Region, regionPath string, con, com2 io.Writer) (*hostVM, error) {
	mem, err := shm.Open(regionPath)
	if err != nil {
		return nil, err
	}
	v := &hostVM{ctl: ctl, done: make(chan struct{}), returned: make(chan struct{})}
	go func() {
		err := guest.RunHost(mem, cfg, con, com2)
		if err == nil && mem.GuestState() != shm.GuestDone {
			err = errors.New("the agent returned without finishing")
		}
		mem.Close()
		v.err = err
		close(v.returned)
		v.finish()
	}()
	return v, nil
}

func (v *hostVM) finish()               { v.doneOnce.Do(func() { close(v.done) }) }
func (v *hostVM) Done() <-chan struct{} { return v.done }

// Kill asks the agent to stop (the soft deadline's control byte) and ends
// the machine once it returned or hostKillGrace has passed.
func (v *hostVM) Kill() {
	v.killOnce.Do(func() {
		select {
		case <-v.returned:
			return
		default:
		}
		v.ctl.SetControl(shm.CtlShutdown, 0xD3)
		go func() {
			select {
			case <-v.returned:
			case <-time.After(hostKillGrace):
			}
			v.finish()
		}()
	})
}

// Err is the agent's failure, a panic or a return before it finished, as
// a *crashError.
func (v *hostVM) Err() error {
	select {
	case <-v.returned:
	default:
		return nil // stopped by Kill; the watchdog's reason stands
	}
	if v.err != nil {
		return &crashError{v.err.Error()}
	}
	return nil
}
