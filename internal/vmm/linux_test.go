package vmm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/initramfs"
	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
	"golang.org/x/sys/unix"
)

// The Linux boot test puts this test binary into the initramfs as /init:
// started as process 1 it runs guestInit instead of the tests.
func TestMain(m *testing.M) {
	if os.Getpid() == 1 {
		guestInit()
	}
	os.Exit(m.Run())
}

const (
	bootMarker   = "KTSTR-VMM-BOOT-OK"
	actionParam  = "ktstr_vmm_test.action"
	topoParam    = "ktstr_vmm_test.topology" // N,L,C,T the guest checks it got
	memParam     = "ktstr_vmm_test.memory"   // MiB
	bootPayload  = "frame from the guest kernel"
	bootTimeout  = 10 * time.Minute // a hang, not a speed limit: nested emulation is slow
	bootMemoryMB = 256
)

// guestInit is /init in the test guest: it mounts what it needs, writes a
// frame into the region through /dev/mem, prints the marker with the
// online CPUs, whether the machine shape sysfs shows is the one asked
// for, and how many kernel warnings and firmware-bug messages the log
// holds (each such line follows on its own), and reboots or powers off
// as the command line says.
func guestInit() {
	con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	}
	say := func(format string, a ...any) { fmt.Fprintf(con, format+"\n", a...) }
	for _, m := range []struct{ src, dst, fs string }{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			say("mount %s: %v", m.dst, err)
		}
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	args := map[string]string{}
	for _, f := range strings.Fields(string(cmdline)) {
		k, v, _ := strings.Cut(f, "=")
		args[k] = v
	}
	if err := guestWriteFrame(args["KTSTR_SHM_BASE"], args["KTSTR_SHM_SIZE"]); err != nil {
		say("region: %v", err)
	}
	online, _ := os.ReadFile("/sys/devices/system/cpu/online")
	shape := "ok"
	if err := guestCheckShape(args[topoParam], args[memParam]); err != nil {
		shape = strings.ReplaceAll(err.Error(), " ", "_")
	}
	bad := guestKernelComplaints()
	say("%s cpus=%s shape=%s complaints=%d", bootMarker, strings.TrimSpace(string(online)), shape, len(bad))
	for _, l := range bad {
		say("complaint: %s", l)
	}
	// Wait until the tty has sent everything: console output from user
	// space goes out in the UART's THR-empty interrupts, and the reboot
	// would otherwise drop what is still queued.
	unix.IoctlSetInt(int(con.Fd()), unix.TCSBRK, 1)
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if args[actionParam] == "poweroff" {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	unix.Reboot(cmd)
	for {
		time.Sleep(time.Hour)
	}
}

// guestCheckShape compares the machine sysfs shows with topology ts.
func guestCheckShape(ts, memMB string) error {
	t, err := topology.Parse(ts)
	if err != nil {
		return err
	}
	mem, err := strconv.Atoi(memMB)
	if err != nil {
		return err
	}
	o, err := topology.Read("/")
	if err != nil {
		return err
	}
	return o.Check(t, mem)
}

// guestKernelComplaints returns the kernel log's warnings, firmware-bug
// messages and ignored MADT entries.
func guestKernelComplaints() []string {
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return []string{"klogctl: " + err.Error()}
	}
	var out []string
	for _, l := range strings.Split(string(buf[:n]), "\n") {
		if strings.Contains(l, "WARNING:") || strings.Contains(l, "[Firmware Bug]") || strings.Contains(l, "entry ignored") {
			out = append(out, l)
		}
	}
	return out
}

func guestWriteFrame(base, size string) error {
	var b, s uint64
	if _, err := fmt.Sscanf(base+" "+size, "0x%x 0x%x", &b, &s); err != nil {
		return fmt.Errorf("KTSTR_SHM_BASE=%q KTSTR_SHM_SIZE=%q: %v", base, size, err)
	}
	f, err := os.OpenFile("/dev/mem", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), int64(b), int(s), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap /dev/mem at %#x: %w", b, err)
	}
	r, err := shm.OpenGuest(mem)
	if err != nil {
		return err
	}
	if err := r.TX().NewProducer(0).Write(wire.AppendFrame(nil, wire.TypeStdout, []byte(bootPayload))); err != nil {
		return err
	}
	r.SetGuestState(shm.GuestDone)
	return nil
}

// bootInitramfs writes an initramfs whose /init is this test binary.
func bootInitramfs(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "initramfs.cpio")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := initramfs.NewWriter(bw)
	for _, d := range []string{"dev", "proc", "sys"} {
		w.Dir(d, 0o755)
	}
	w.CharDev("dev/console", 0o600, 5, 1)
	w.CopyFile("init", self, 0o755)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBootLinux boots a real kernel with this binary as /init on a few
// machine shapes and checks the marker on COM1 (the online CPUs, the
// shape sysfs reports, no kernel warnings or firmware-bug messages), the
// frame in the region, and how the VM ended. It needs hardware KVM and a
// kernel image; KTSTR_VMM_BOOT_TOPOLOGIES (semicolon-separated N,L,C,T)
// replaces the shapes of the multi-CPU cases, in order (the first is the
// rebooting one), and adds powering-off ones past them. The pvh case boots a
// vmlinux through its PVH entry, the bzimage case the same build's
// bzImage (testPVHKernel; both skipped without one).
func TestBootLinux(t *testing.T) {
	requireHardwareKVM(t)
	kernel := testKernel(t)
	initrd := bootInitramfs(t)
	// image: "" the kernel testKernel gives; with testPVHKernel's pair,
	// "pvh" its vmlinux through the PVH entry and "bzimage" the same
	// build's bzImage through the 64-bit entry (the two side by side in
	// the log).
	type bootCase struct {
		topo   string
		action string
		want   ExitReason
		image  string
	}
	cases := []bootCase{
		{"1,1,1,1", "poweroff", ExitPoweroff, ""},
		{"1,1,1,1", "poweroff", ExitPoweroff, "pvh"},
		{"1,1,1,1", "poweroff", ExitPoweroff, "bzimage"},
		{"2,2,2,1", "reboot", ExitShutdown, ""},   // two NUMA nodes of 128 MiB, an LLC each
		{"1,2,2,2", "poweroff", ExitPoweroff, ""}, // 8 vCPUs: SMT pairs, two LLCs
	}
	if env := os.Getenv("KTSTR_VMM_BOOT_TOPOLOGIES"); env != "" {
		multi := cases[3:]
		cases = cases[:3:3]
		for i, ts := range strings.Split(env, ";") {
			c := bootCase{ts, "poweroff", ExitPoweroff, ""}
			if i < len(multi) {
				c = multi[i]
				c.topo = ts
			}
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		name := c.topo + " " + c.action
		if c.image != "" {
			name += " " + c.image
		}
		t.Run(name, func(t *testing.T) {
			kernel, vmlinux := kernel, ""
			if c.image != "" {
				kernel, vmlinux = testPVHKernel(t)
			}
			if c.image == "bzimage" {
				vmlinux = ""
			}
			topo, err := topology.Parse(c.topo)
			if err != nil {
				t.Fatal(err)
			}
			r, path := newRegion(t)
			layout := r.Layout()
			var console syncBuffer
			cmdline := fmt.Sprintf("console=ttyS0 reboot=t panic=-1 rdinit=/init %s=%s %s=%s %s=%d",
				actionParam, c.action, topoParam, c.topo, memParam, bootMemoryMB)
			if os.Getenv("KTSTR_VMM_VERBOSE") == "" {
				cmdline += " quiet"
			}
			start := time.Now()
			vm, err := Start(Config{Kernel: kernel, Vmlinux: vmlinux, Initrd: initrd, Cmdline: cmdline, Topology: topo,
				MemoryMB: bootMemoryMB, RegionPath: path, RegionSize: layout.Size, Console: &console})
			if err != nil {
				t.Fatal(err)
			}
			if vm.pvh != (c.image == "pvh") {
				t.Errorf("booted through the PVH entry: %v, want %v", vm.pvh, c.image == "pvh")
			}
			reason, err := waitExit(t, vm, bootTimeout)
			st := vm.Stats()
			t.Logf("%s on %s: %v in %v; setup %v, first exit at %v, %d exits (%d IO, %d MMIO, %d unknown ports)",
				vm.KernelVersion(), c.topo, reason, time.Since(start).Round(time.Millisecond), st.Setup, st.FirstExit,
				st.Exits, st.IOExits, st.MMIOExits, st.UnknownPorts)
			out := console.String()
			if reason != c.want || err != nil {
				t.Errorf("Exit() = %v, %v; want %v, nil", reason, err, c.want)
			}
			online := "0"
			if n := topo.CPUs(); n > 1 {
				online = fmt.Sprintf("0-%d", n-1)
			}
			if want := bootMarker + " cpus=" + online + " shape=ok complaints=0"; !strings.Contains(out, want) {
				t.Errorf("console lacks %q", want)
			}
			if t.Failed() {
				t.Logf("console:\n%s", out)
			}
			if s := r.GuestState(); s != shm.GuestDone {
				t.Errorf("GuestState() = %d, want %d", s, shm.GuestDone)
			}
			p1, p2, err := r.TX().NewConsumer().Peek()
			if err != nil {
				t.Fatal(err)
			}
			frames, _ := wire.ParseStream(append(p1, p2...), 0)
			if len(frames) != 1 || string(frames[0].Payload) != bootPayload || !frames[0].CRCOK {
				t.Errorf("TX ring holds %v, want one %q frame", frames, bootPayload)
			}
		})
	}
}
