package vmm

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/initramfs"
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
	bootPayload  = "frame from the guest kernel"
	bootTimeout  = 10 * time.Minute // a hang, not a speed limit: nested emulation is slow
	bootMemoryMB = 256
)

// guestInit is /init in the test guest: it mounts what it needs, writes a
// frame into the region through /dev/mem, prints the marker with the
// online CPUs on the console and reboots or powers off as the command
// line says.
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
	say("%s cpus=%s", bootMarker, strings.TrimSpace(string(online)))
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

// TestBootLinux boots a real kernel with this binary as /init and checks
// the marker on COM1, the frame in the region, the CPU count the guest
// saw, and how the VM ended. It needs hardware KVM and a kernel image.
func TestBootLinux(t *testing.T) {
	requireHardwareKVM(t)
	kernel := testKernel(t)
	initrd := bootInitramfs(t)
	for _, c := range []struct {
		name   string
		cpus   int
		action string
		want   ExitReason
		online string
	}{
		{"reboot 2 cpus", 2, "reboot", ExitShutdown, "0-1"},
		{"poweroff 1 cpu", 1, "poweroff", ExitPoweroff, "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, path := newRegion(t)
			layout := r.Layout()
			var console syncBuffer
			cmdline := "console=ttyS0 reboot=t panic=-1 rdinit=/init " + actionParam + "=" + c.action
			if os.Getenv("KTSTR_VMM_VERBOSE") == "" {
				cmdline += " quiet"
			}
			start := time.Now()
			vm, err := Start(Config{Kernel: kernel, Initrd: initrd, Cmdline: cmdline, CPUs: c.cpus,
				MemoryMB: bootMemoryMB, RegionPath: path, RegionSize: layout.Size, Console: &console})
			if err != nil {
				t.Fatal(err)
			}
			reason, err := waitExit(t, vm, bootTimeout)
			st := vm.Stats()
			t.Logf("%s: %v in %v; setup %v, first exit at %v, %d exits (%d IO, %d MMIO, %d unknown ports)",
				vm.KernelVersion(), reason, time.Since(start).Round(time.Millisecond), st.Setup, st.FirstExit,
				st.Exits, st.IOExits, st.MMIOExits, st.UnknownPorts)
			out := console.String()
			if reason != c.want || err != nil {
				t.Errorf("Exit() = %v, %v; want %v, nil", reason, err, c.want)
			}
			if want := bootMarker + " cpus=" + c.online; !strings.Contains(out, want) {
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
