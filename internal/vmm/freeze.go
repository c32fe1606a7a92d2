package vmm

import (
	"errors"
	"fmt"
	"time"

	"github.com/ktstr-go/ktstr/internal/kvm"
)

// VCPUState is one vCPU's registers as Freeze captured them.
type VCPUState struct {
	Regs    kvm.Regs
	Sregs   kvm.Sregs
	MPState uint32 // kvm.MPState*: 3 is halted (idle in HLT)
	Err     error  // why the registers could not be read; or the vCPU did not stop
}

// MPStateHalted is KVM_MP_STATE_HALTED.
const MPStateHalted = 3

// freezeRound is one Freeze: each vCPU thread parks on thaw after sending
// its registers on arrive.
type freezeRound struct {
	thaw   chan struct{}
	arrive chan arrival
}

type arrival struct {
	index int
	state VCPUState
}

// ErrFreeze is wrapped when not every vCPU stopped in time, or the VM
// ended during the freeze.
var ErrFreeze = errors.New("vmm: freeze")

// Freeze stops every vCPU and returns their registers, each read on its
// own thread once it has left KVM_RUN. It waits at most timeout for all of
// them (a bounded rendezvous); on a timeout the states of the vCPUs that
// did not stop carry an error and so does Freeze. Either way the caller
// must call Thaw, which resumes the vCPUs; one freeze at a time (a second
// Freeze waits for the first's Thaw).
func (v *VM) Freeze(timeout time.Duration) ([]VCPUState, error) {
	v.freezeMu.Lock()
	r := &freezeRound{thaw: make(chan struct{}), arrive: make(chan arrival, len(v.vcpus))}
	v.round.Store(r)
	v.kick()
	states := make([]VCPUState, len(v.vcpus))
	got := make([]bool, len(v.vcpus))
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for n := 0; n < len(v.vcpus); n++ {
		select {
		case a := <-r.arrive:
			states[a.index], got[a.index] = a.state, true
		case <-v.stopped:
			return states, fmt.Errorf("%w: the VM ended", ErrFreeze)
		case <-timer.C:
			var late []int
			for i, ok := range got {
				if !ok {
					late = append(late, i)
					states[i].Err = fmt.Errorf("%w: vCPU %d did not stop within %v", ErrFreeze, i, timeout)
				}
			}
			return states, fmt.Errorf("%w: vCPUs %v did not stop within %v", ErrFreeze, late, timeout)
		}
	}
	return states, nil
}

// Thaw resumes the vCPUs Freeze stopped. A no-op without a freeze.
func (v *VM) Thaw() {
	r := v.round.Swap(nil)
	if r == nil {
		return
	}
	v.kickMu.Lock()
	if !v.stopping.Load() && !v.released {
		for _, c := range v.vcpus {
			c.cpu.SetImmediateExit(false)
		}
	}
	v.kickMu.Unlock()
	close(r.thaw)
	v.freezeMu.Unlock()
}

// park is called on a vCPU's thread after KVM_RUN returned early: during
// a freeze it reports the vCPU's registers and waits for Thaw (or the
// VM's end).
func (v *VM) park(c *vcpu) {
	r := v.round.Load()
	if r == nil {
		return
	}
	var st VCPUState
	var err error
	if st.Regs, err = c.cpu.GetRegs(); err == nil {
		if st.Sregs, err = c.cpu.GetSregs(); err == nil {
			st.MPState, err = c.cpu.GetMPState()
		}
	}
	st.Err = err
	r.arrive <- arrival{c.cpu.ID, st} // buffered: one slot per vCPU
	select {
	case <-r.thaw:
	case <-v.stopped:
	}
}

// RAMRange is one piece of guest RAM: the host bytes of guest-physical
// [GPA, GPA+len(Mem)).
type RAMRange struct {
	GPA uint64
	Mem []byte
}

// WithRAM calls fn with the guest's RAM ranges while they stay mapped (the
// VM's end waits for fn to return before it unmaps them). After the end it
// returns ErrReleased without calling fn.
func (v *VM) WithRAM(fn func([]RAMRange) error) error {
	v.memMu.RLock()
	defer v.memMu.RUnlock()
	if v.ram == nil {
		return ErrReleased
	}
	rs := []RAMRange{{0, v.guest.low}}
	if len(v.guest.high) > 0 {
		rs = append(rs, RAMRange{highRAMStart, v.guest.high})
	}
	return fn(rs)
}

// ErrReleased: the VM has ended and its memory is gone.
var ErrReleased = errors.New("vmm: the VM has ended; its memory is released")
