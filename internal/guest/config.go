package guest

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// ConfigPath is where ktstr-boot puts the run's configuration in the
// initramfs.
const ConfigPath = "/ktstr/config.json"

// Config is what ktstr-boot tells the agent, as JSON in the initramfs
// (the kernel command line carries only KTSTR_GUEST=1 and, for the own
// VMM, the region's physical range).
type Config struct {
	// Scenario is a canned scenario name; ScenarioJSON, when set, is the
	// scenario file's content and wins.
	Scenario     string          `json:"scenario,omitempty"`
	ScenarioJSON json.RawMessage `json:"scenario_json,omitempty"`
	// Scheduler is the scheduler binary's path in the guest, "" for the
	// kernel's own scheduler (EEVDF).
	Scheduler string   `json:"scheduler,omitempty"`
	SchedArgs []string `json:"sched_args,omitempty"`
	// Replacement is the scheduler the scenario's replace_scheduler op
	// attaches in place of Scheduler ("" for none), with its arguments.
	Replacement     string   `json:"replacement,omitempty"`
	ReplacementArgs []string `json:"replacement_args,omitempty"`
	// AttachTimeoutMS bounds the wait for the scheduler to attach.
	AttachTimeoutMS int `json:"attach_timeout_ms,omitempty"`
	// Topology is the machine shape the VM was given, and MemoryMB its
	// RAM: the agent checks them against sysfs before running anything
	// (nil in host mode: the host is whatever it is).
	Topology *topology.Topology `json:"topology,omitempty"`
	MemoryMB int                `json:"memory_mb,omitempty"`
	// Hostile, when set, makes the agent a hostile guest that runs these
	// attacks instead of the scenario (ParseHostile, hostile.go).
	Hostile []string `json:"hostile,omitempty"`
	// Exec, when set, makes the agent run this command (Exec[0] a path in
	// the guest) instead of a scenario, once the scheduler, if any, has
	// attached: its output goes to the second serial port (COM2) and its
	// exit status is the EXIT frame's code (ktstr-boot --exec). Shell
	// makes it interactive: COM2 is its controlling terminal, TERM its
	// terminal type (ktstr-boot --shell). See exec.go.
	Exec  []string `json:"exec,omitempty"`
	Shell bool     `json:"shell,omitempty"`
	Term  string   `json:"term,omitempty"`
}

// ReadConfig reads the run's configuration; a missing file means the
// defaults (the steady scenario under the kernel's scheduler).
func ReadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
