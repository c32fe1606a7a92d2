package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
)

// TestParseRegisters reads QEMU 7.2's "info registers -a" of a 2-vCPU
// guest running Linux with 5-level paging.
func TestParseRegisters(t *testing.T) {
	out, err := os.ReadFile("testdata/info-registers-a.txt")
	if err != nil {
		t.Fatal(err)
	}
	regs, err := ParseRegisters(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2 {
		t.Fatalf("%d vCPUs, want 2", len(regs))
	}
	r := regs[0]
	want := introspect.Regs{RIP: 0xffffffff8107c92b, RFLAGS: 0x93, CR0: 0x80050033, CR2: 0xff11000002000000, CR3: 0x1c2b000, CR4: 0x7516b0, EFER: 0xd01}
	if r.RIP != want.RIP || r.RFLAGS != want.RFLAGS || r.CR0 != want.CR0 || r.CR2 != want.CR2 || r.CR3 != want.CR3 || r.CR4 != want.CR4 || r.EFER != want.EFER {
		t.Errorf("vCPU 0 = %+v, want %+v", r, want)
	}
	if regs[1].RIP != 0xffffffff81380362 {
		t.Errorf("vCPU 1 RIP %#x", regs[1].RIP)
	}
	for _, bad := range []string{"", "CPU#0\nRAX=0000\n", "CPU#0\nRAX=zz\n"} {
		if _, err := ParseRegisters(bad); !errors.Is(err, ErrQMP) {
			t.Errorf("ParseRegisters(%q) error %v, want ErrQMP", bad, err)
		}
	}
}

// fakeQEMU serves QMP on a socket: the greeting, then one answer per
// command from answers (an event before each, as QEMU may interleave).
func fakeQEMU(t *testing.T, answers map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var m struct{ Execute string }
			json.Unmarshal(sc.Bytes(), &m)
			a, ok := answers[m.Execute]
			if !ok {
				a = `{"error": {"class": "CommandNotFound", "desc": "no"}}`
			}
			if a == "hang" {
				continue
			}
			c.Write([]byte(`{"event": "STOP", "timestamp": {}}` + "\n" + a + "\n"))
		}
	}()
	return path
}

func TestQMP(t *testing.T) {
	out, _ := os.ReadFile("testdata/info-registers-a.txt")
	hmp, _ := json.Marshal(string(out))
	path := fakeQEMU(t, map[string]string{
		"qmp_capabilities":      `{"return": {}}`,
		"stop":                  `{"return": {}}`,
		"human-monitor-command": `{"return": ` + string(hmp) + `}`,
		"cont":                  "hang",
	})
	q, err := DialQMP(path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	vm := &VM{qmp: q}
	regs, err := vm.Freeze(5 * time.Second)
	if err != nil || len(regs) != 2 || regs[0].CR3 != 0x1c2b000 {
		t.Fatalf("Freeze = %d regs, %v", len(regs), err)
	}
	if _, err := q.Execute("nosuch", nil, time.Second); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("unknown command: %v", err)
	}
	// A command QEMU never answers times out and breaks the client.
	if err := vm.Thaw(100 * time.Millisecond); !errors.Is(err, ErrQMP) {
		t.Errorf("Thaw with no answer: %v, want ErrQMP", err)
	}
	if _, err := q.Execute("stop", nil, time.Second); !errors.Is(err, ErrQMP) {
		t.Errorf("after a timeout: %v, want ErrQMP (broken)", err)
	}
}

func TestArgsRAMFile(t *testing.T) {
	c := Config{Kernel: "k", Initrd: "i", CPUs: 2, MemoryMB: 512, Region: "r", RegionSize: 1 << 20, RAMFile: "/dev/shm/ram", QMP: "/run/q.sock"}
	args := strings.Join(c.Args(), " ")
	for _, w := range []string{"-M pc,memory-backend=ram", "-object memory-backend-file,id=ram,mem-path=/dev/shm/ram,share=on,size=512M", "-qmp unix:/run/q.sock,server=on,wait=off"} {
		if !strings.Contains(args, w) {
			t.Errorf("args lack %q: %s", w, args)
		}
	}
	c.RAMFile, c.QMP = "", ""
	if a := c.Args(); slices.Contains(a, "-qmp") || strings.Contains(strings.Join(a, " "), "memory-backend=ram") {
		t.Errorf("args without RAM file or QMP: %v", a)
	}
}

func TestPCLayout(t *testing.T) {
	for _, c := range []struct{ ram, low, high uint64 }{
		{512 << 20, 512 << 20, 0},
		{0xe0000000 - 1, 0xe0000000 - 1, 0},
		{0xe0000000, 0xc0000000, 0x20000000},
		{8 << 30, 0xc0000000, 8<<30 - 0xc0000000},
	} {
		if l, h := PCLayout(c.ram); l != c.low || h != c.high {
			t.Errorf("PCLayout(%#x) = %#x, %#x; want %#x, %#x", c.ram, l, h, c.low, c.high)
		}
	}
}
