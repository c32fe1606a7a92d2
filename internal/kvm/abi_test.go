package kvm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requests are the request numbers as the kernel headers define them
// (printed from <linux/kvm.h> on x86-64).
var requests = []struct {
	name string
	got  uintptr
	want uintptr
}{
	{"KVM_GET_API_VERSION", reqGetAPIVersion, 0xae00},
	{"KVM_CREATE_VM", reqCreateVM, 0xae01},
	{"KVM_CHECK_EXTENSION", reqCheckExtension, 0xae03},
	{"KVM_GET_VCPU_MMAP_SIZE", reqGetVCPUMmapSize, 0xae04},
	{"KVM_GET_SUPPORTED_CPUID", reqGetSupportedCPUID, 0xc008ae05},
	{"KVM_CREATE_VCPU", reqCreateVCPU, 0xae41},
	{"KVM_SET_USER_MEMORY_REGION", reqSetUserMemoryRegion, 0x4020ae46},
	{"KVM_SET_TSS_ADDR", reqSetTSSAddr, 0xae47},
	{"KVM_SET_IDENTITY_MAP_ADDR", reqSetIdentityMapAddr, 0x4008ae48},
	{"KVM_CREATE_IRQCHIP", reqCreateIRQChip, 0xae60},
	{"KVM_IRQ_LINE", reqIRQLine, 0x4008ae61},
	{"KVM_CREATE_PIT2", reqCreatePIT2, 0x4040ae77},
	{"KVM_RUN", reqRun, 0xae80},
	{"KVM_GET_REGS", reqGetRegs, 0x8090ae81},
	{"KVM_SET_REGS", reqSetRegs, 0x4090ae82},
	{"KVM_GET_SREGS", reqGetSregs, 0x8138ae83},
	{"KVM_SET_SREGS", reqSetSregs, 0x4138ae84},
	{"KVM_SET_MSRS", reqSetMSRs, 0x4008ae89},
	{"KVM_SET_FPU", reqSetFPU, 0x41a0ae8d},
	{"KVM_GET_LAPIC", reqGetLAPIC, 0x8400ae8e},
	{"KVM_SET_LAPIC", reqSetLAPIC, 0x4400ae8f},
	{"KVM_SET_CPUID2", reqSetCPUID2, 0x4008ae90},
	{"KVM_GET_MP_STATE", reqGetMPState, 0x8004ae98},
	{"KVM_GET_XCRS", reqGetXCRs, 0x8188aea6},
	{"KVM_SET_XCRS", reqSetXCRs, 0x4188aea7},
}

func TestRequestNumbers(t *testing.T) {
	for _, r := range requests {
		if r.got != r.want {
			t.Errorf("%s = %#x, want %#x", r.name, r.got, r.want)
		}
	}
}

// TestAgainstKernelHeaders compiles a C program against the installed
// <linux/kvm.h> and compares its request numbers, sizes, offsets and
// constants with this package's.
func TestAgainstKernelHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a C program; skipped in -short mode")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) to read <linux/kvm.h> with")
	}
	if _, err := os.Stat("/usr/include/linux/kvm.h"); err != nil {
		t.Skip("no /usr/include/linux/kvm.h (install linux-libc-dev)")
	}
	dir := t.TempDir()
	var src bytes.Buffer
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <linux/kvm.h>\n#define P(n, x) printf(\"%s %lu\\n\", n, (unsigned long)(x))\nint main(void) {\n")
	want := map[string]uint64{}
	add := func(name, expr string, v uint64) {
		fmt.Fprintf(&src, "P(%q, %s);\n", name, expr)
		want[name] = v
	}
	for _, r := range requests {
		add(r.name, r.name, uint64(r.got))
	}
	for _, s := range []struct {
		c string
		v uint64
	}{
		{"kvm_regs", sizeofRegs}, {"kvm_sregs", sizeofSregs}, {"kvm_segment", sizeofSegment},
		{"kvm_dtable", sizeofDTable}, {"kvm_userspace_memory_region", sizeofMemRegion},
		{"kvm_cpuid_entry2", sizeofCPUIDEntry}, {"kvm_cpuid2", sizeofCPUIDHeader},
		{"kvm_lapic_state", sizeofLAPIC}, {"kvm_pit_config", sizeofPITConfig}, {"kvm_fpu", sizeofFPU},
		{"kvm_msrs", sizeofMSRsHeader}, {"kvm_msr_entry", sizeofMSREntry}, {"kvm_irq_level", sizeofIRQLevel},
		{"kvm_mp_state", sizeofMPState}, {"kvm_xcrs", sizeofXCRs},
	} {
		add("sizeof "+s.c, "sizeof(struct "+s.c+")", s.v)
	}
	for _, o := range []struct {
		field string
		v     uint64
	}{
		{"immediate_exit", runImmediateExit}, {"exit_reason", runExitReason}, {"io", runUnion},
		{"io.size", runUnion + 1}, {"io.port", runUnion + 2}, {"io.count", runUnion + 4}, {"io.data_offset", runUnion + 8},
		{"mmio.phys_addr", runUnion}, {"mmio.data", runUnion + 8}, {"mmio.len", runUnion + 16}, {"mmio.is_write", runUnion + 20},
		{"fail_entry.cpu", runUnion + 8}, {"internal.ndata", runUnion + 4}, {"internal.data", runUnion + 8},
		{"system_event.ndata", runUnion + 4}, {"system_event.data", runUnion + 8},
	} {
		add("kvm_run."+o.field, "offsetof(struct kvm_run, "+o.field+")", o.v)
	}
	for _, c := range []struct {
		name string
		v    uint64
	}{
		{"KVM_EXIT_IO", ExitIO}, {"KVM_EXIT_HLT", ExitHLT}, {"KVM_EXIT_MMIO", ExitMMIO},
		{"KVM_EXIT_SHUTDOWN", ExitShutdown}, {"KVM_EXIT_FAIL_ENTRY", ExitFailEntry}, {"KVM_EXIT_INTR", ExitIntr},
		{"KVM_EXIT_INTERNAL_ERROR", ExitInternalError}, {"KVM_EXIT_SYSTEM_EVENT", ExitSystemEvent},
		{"KVM_SYSTEM_EVENT_SHUTDOWN", SystemEventShutdown}, {"KVM_SYSTEM_EVENT_RESET", SystemEventReset},
		{"KVM_SYSTEM_EVENT_CRASH", SystemEventCrash}, {"KVM_PIT_SPEAKER_DUMMY", PITSpeakerDummy},
		{"KVM_CPUID_FLAG_SIGNIFCANT_INDEX", CPUIDFlagSignificantIndx}, {"KVM_CAP_IMMEDIATE_EXIT", CapImmediateExit},
		{"KVM_CAP_MAX_VCPUS", CapMaxVCPUs}, {"KVM_CAP_MAX_VCPU_ID", CapMaxVCPUID}, {"KVM_CAP_XCRS", CapXCRs}, {"KVM_CAP_NR_MEMSLOTS", CapNrMemslots}, {"KVM_CAP_PIT2", CapPIT2},
		{"KVM_INTERNAL_ERROR_EMULATION", InternalErrorEmulation}, {"KVM_MP_STATE_HALTED", MPStateHalted},
	} {
		add(c.name, c.name, c.v)
	}
	src.WriteString("return 0;\n}\n")
	cfile := filepath.Join(dir, "abi.c")
	if err := os.WriteFile(cfile, src.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "abi")
	if out, err := exec.Command(cc, "-o", bin, cfile).CombinedOutput(); err != nil {
		t.Skipf("cannot compile against <linux/kvm.h>: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseUint(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		got[line[:i]] = v
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("this package vs <linux/kvm.h> (-go +C):\n%s", d)
	}
}

// fakeVCPU is a VCPU with a kvm_run page in Go memory, for decoding tests.
func fakeVCPU(reason uint32, union []byte) *VCPU {
	run := make([]byte, 4096)
	le.PutUint32(run[runExitReason:], reason)
	copy(run[runUnion:], union)
	return &VCPU{run: run}
}

func TestDecodeIO(t *testing.T) {
	u := []byte{IOOut, 1, 0xf8, 0x03, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	le.PutUint64(u[8:], 0x200)
	c := fakeVCPU(ExitIO, u)
	copy(c.run[0x200:], "abc")
	io, err := c.IO()
	if err != nil {
		t.Fatal(err)
	}
	want := IO{Dir: IOOut, Size: 1, Port: 0x3f8, Count: 3, Data: []byte("abc")}
	if d := cmp.Diff(want, io); d != "" {
		t.Errorf("IO() mismatch (-want +got):\n%s", d)
	}
	if c.ExitReason() != ExitIO {
		t.Errorf("ExitReason() = %d, want %d", c.ExitReason(), ExitIO)
	}
	for _, bad := range []struct {
		name  string
		size  uint8
		count uint32
		off   uint64
	}{
		{"offset past page", 1, 1, 4096},
		{"data past page", 4, 2, 4090},
		{"huge count", 4, 0xffffffff, 0x200},
		{"zero size", 0, 1, 0x200},
		{"offset overflow", 1, 1, ^uint64(0)},
	} {
		t.Run(bad.name, func(t *testing.T) {
			u := make([]byte, 16)
			u[0], u[1] = IOIn, bad.size
			le.PutUint32(u[4:], bad.count)
			le.PutUint64(u[8:], bad.off)
			if _, err := fakeVCPU(ExitIO, u).IO(); !errors.Is(err, ErrBadExit) {
				t.Errorf("IO() error = %v, want ErrBadExit", err)
			}
		})
	}
}

func TestDecodeMMIO(t *testing.T) {
	u := make([]byte, 24)
	le.PutUint64(u, 0xfed00000)
	copy(u[8:], []byte{1, 2, 3, 4})
	le.PutUint32(u[16:], 4)
	u[20] = 1
	m, err := fakeVCPU(ExitMMIO, u).MMIO()
	if err != nil {
		t.Fatal(err)
	}
	want := MMIO{Addr: 0xfed00000, Data: []byte{1, 2, 3, 4}, IsWrite: true}
	if d := cmp.Diff(want, m); d != "" {
		t.Errorf("MMIO() mismatch (-want +got):\n%s", d)
	}
	le.PutUint32(u[16:], 9)
	if _, err := fakeVCPU(ExitMMIO, u).MMIO(); !errors.Is(err, ErrBadExit) {
		t.Errorf("MMIO() with len 9: error = %v, want ErrBadExit", err)
	}
}

func TestDecodeInternalAndEvents(t *testing.T) {
	u := make([]byte, 8+8*16)
	le.PutUint32(u, InternalErrorEmulation)
	le.PutUint32(u[4:], 2)
	le.PutUint64(u[8:], 0x1111)
	le.PutUint64(u[16:], 0x2222)
	got := fakeVCPU(ExitInternalError, u).InternalError()
	if d := cmp.Diff(InternalError{Suberror: 1, Data: []uint64{0x1111, 0x2222}}, got); d != "" {
		t.Errorf("InternalError() mismatch (-want +got):\n%s", d)
	}
	le.PutUint32(u[4:], 1000) // ndata beyond the array: capped at 16
	if n := len(fakeVCPU(ExitInternalError, u).InternalError().Data); n != 16 {
		t.Errorf("InternalError() with ndata 1000: %d words, want 16", n)
	}
	le.PutUint32(u, SystemEventReset)
	le.PutUint32(u[4:], 1)
	if d := cmp.Diff(SystemEvent{Type: SystemEventReset, Data: []uint64{0x1111}}, fakeVCPU(ExitSystemEvent, u).SystemEvent()); d != "" {
		t.Errorf("SystemEvent() mismatch (-want +got):\n%s", d)
	}
	f := make([]byte, 12)
	le.PutUint64(f, 0x80000021)
	le.PutUint32(f[8:], 3)
	if got := fakeVCPU(ExitFailEntry, f).FailEntry(); got != (FailEntry{HardwareReason: 0x80000021, CPU: 3}) {
		t.Errorf("FailEntry() = %+v", got)
	}
}

func TestExitName(t *testing.T) {
	for _, c := range []struct {
		r    uint32
		want string
	}{{ExitIO, "KVM_EXIT_IO"}, {ExitShutdown, "KVM_EXIT_SHUTDOWN"}, {ExitInternalError, "KVM_EXIT_INTERNAL_ERROR"}, {99, "KVM_EXIT_99"}} {
		if got := ExitName(c.r); got != c.want {
			t.Errorf("ExitName(%d) = %q, want %q", c.r, got, c.want)
		}
	}
}
