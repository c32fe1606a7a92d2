package vmm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ktstr-go/ktstr/internal/kvm"
)

// Kind is the kind of KVM backend a host has.
type Kind int

const (
	// KindNone: no usable /dev/kvm.
	KindNone Kind = iota
	// KindHardware: KVM on hardware virtualization (kvm_intel or
	// kvm_amd): boots Linux.
	KindHardware
	// KindSoftware: /dev/kvm works but is served by something else, such
	// as PVM (kvm_pvm), which emulates guest instructions: small guest
	// programs run (slowly); a stock Linux kernel does not boot.
	KindSoftware
)

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindHardware:
		return "hardware"
	case KindSoftware:
		return "software"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Backend is what Probe found.
type Backend struct {
	Kind   Kind
	Module string // "kvm_intel", "kvm_amd", "kvm_pvm", or "" when none of these is loaded
}

// CanBootLinux reports whether a stock Linux kernel boots on b.
func (b Backend) CanBootLinux() bool { return b.Kind == KindHardware }

func (b Backend) String() string {
	switch b.Kind {
	case KindHardware:
		return fmt.Sprintf("hardware KVM (%s)", b.Module)
	case KindSoftware:
		m := b.Module
		if m == "" {
			m = "no kvm_intel or kvm_amd module"
		}
		return fmt.Sprintf("software KVM (%s): runs small guest programs, cannot boot a stock kernel", m)
	}
	if b.Module != "" {
		return fmt.Sprintf("no usable %s (%s loaded)", kvm.DevicePath, b.Module)
	}
	return "no KVM"
}

// Probe tells what KVM this host offers: which module serves KVM (from
// /sys/module) and whether /dev/kvm opens and answers API version 12.
// The error says why /dev/kvm is unusable (Kind is then KindNone).
func Probe() (Backend, error) {
	return probe("/sys/module", kvm.DevicePath)
}

func probe(sysModule, dev string) (Backend, error) {
	b := Backend{Kind: KindSoftware}
	for _, m := range []string{"kvm_intel", "kvm_amd", "kvm_pvm"} {
		if _, err := os.Stat(filepath.Join(sysModule, m)); err == nil {
			b.Module = m
			if m != "kvm_pvm" {
				b.Kind = KindHardware
			}
			break
		}
	}
	s, err := kvm.OpenPath(dev)
	if err != nil {
		b.Kind = KindNone
		if errors.Is(err, os.ErrNotExist) {
			return b, fmt.Errorf("vmm: no %s: %w", dev, err)
		}
		return b, fmt.Errorf("vmm: %w", err)
	}
	s.Close()
	return b, nil
}
