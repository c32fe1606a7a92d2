package boot

import (
	"os"
	"time"

	"github.com/ktstr-go/ktstr/internal/noise"
)

// noiseInterval is how often the vCPU threads' accounting is read.
const noiseInterval = 100 * time.Millisecond

// startNoise starts measuring how much the host starves the VM's vCPU
// threads (internal/noise): QEMU's "CPU N/..." threads, or every thread
// of ktstr-boot for the own VMM (its vCPU threads among them). Nothing
// for --vmm host, where no vCPU stands between the agent and the host.
func startNoise(backend string, vm machine) *noise.Sampler {
	switch backend {
	case "host":
		return nil
	case "own-vmm":
		return noise.Start(backend, os.Getpid(), noise.AnyThread, noiseInterval)
	}
	p, ok := vm.(interface{ Pid() int })
	if !ok {
		return nil
	}
	return noise.Start(backend, p.Pid(), noise.VCPUThread, noiseInterval)
}

// writeNoise writes the measurement as noise.json in the run directory.
func writeNoise(rd *runDir, m noise.Measurement) error {
	f, err := rd.create(NoiseFile)
	if err != nil {
		return err
	}
	if err := m.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
