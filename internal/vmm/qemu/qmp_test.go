package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
	"github.com/ktstr-go/ktstr/internal/topology"
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
	// An application processor not started yet: QEMU's 32-bit dump.
	out, err = os.ReadFile("testdata/info-registers-32.txt")
	if err != nil {
		t.Fatal(err)
	}
	regs, err = ParseRegisters(string(out))
	if err != nil || len(regs) != 2 || regs[1].RIP != 0xfd09a || regs[1].CR0 != 0x11 || regs[1].RSP != 0x6c5c || !regs[1].Halted || regs[0].CR3 != 0x1c2b000 {
		t.Errorf("32-bit vCPU: %+v, %v", regs, err)
	}
	for _, bad := range []string{"", "CPU#0\nRAX=0000\n", "CPU#0\nRAX=zz\n"} {
		if _, err := ParseRegisters(bad); !errors.Is(err, ErrQMP) {
			t.Errorf("ParseRegisters(%q) error %v, want ErrQMP", bad, err)
		}
	}
}

// fakeQEMU serves QMP on one end of a pipe and returns the other: the
// greeting, then one answer per command from answers (an event before
// each, as QEMU may interleave them).
func fakeQEMU(t *testing.T, answers map[string]string) net.Conn {
	t.Helper()
	ours, theirs := net.Pipe()
	t.Cleanup(func() { theirs.Close() })
	go func() {
		c := theirs
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
	return ours
}

func TestQMP(t *testing.T) {
	out, _ := os.ReadFile("testdata/info-registers-a.txt")
	hmp, _ := json.Marshal(string(out))
	conn := fakeQEMU(t, map[string]string{
		"qmp_capabilities":      `{"return": {}}`,
		"stop":                  `{"return": {}}`,
		"human-monitor-command": `{"return": ` + string(hmp) + `}`,
		"cont":                  "hang",
	})
	q, err := newQMP(conn, 5*time.Second)
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

func TestArgsIntrospect(t *testing.T) {
	one := Config{Kernel: "k", Initrd: "i", MemoryMB: 512, Region: "r", RegionSize: 1 << 20, Introspect: true}
	two := one
	two.Topology = topology.Topology{Nodes: 2, LLCs: 2, Cores: 1, Threads: 1}
	for _, c := range []struct {
		name string
		c    Config
		want []string
	}{
		{"one node", one, []string{"-M microvm,pcie=on,acpi=on,memory-backend=ram", "-object memory-backend-file,id=ram,mem-path=/proc/self/fd/6,share=on,size=512M",
			"-chardev socket,id=qmp,fd=5 -mon chardev=qmp,mode=control"}},
		{"two nodes", two, []string{"-M pc ", "memory-backend-file,id=node0,mem-path=/proc/self/fd/6,share=on,size=256M",
			"memory-backend-file,id=node1,mem-path=/proc/self/fd/7,share=on,size=256M", "-chardev socket,id=qmp,fd=5"}},
	} {
		args := strings.Join(c.c.Args(), " ")
		for _, w := range c.want {
			if !strings.Contains(args, w) {
				t.Errorf("%s: args lack %q: %s", c.name, w, args)
			}
		}
	}
	one.Introspect = false
	if a := strings.Join(one.Args(), " "); strings.Contains(a, "qmp") || strings.Contains(a, "memory-backend=ram") || strings.Contains(a, "/proc/self/fd/6") {
		t.Errorf("args without Introspect: %s", a)
	}
}

func TestLayout(t *testing.T) {
	for _, c := range []struct {
		m              Machine
		ram, low, high uint64
	}{
		{MachinePC, 512 << 20, 512 << 20, 0},
		{MachinePC, 0xe0000000 - 1, 0xe0000000 - 1, 0},
		{MachinePC, 0xe0000000, 0xc0000000, 0x20000000},
		{MachinePC, 8 << 30, 0xc0000000, 8<<30 - 0xc0000000},
		{MachineMicrovm, 512 << 20, 512 << 20, 0},
		{MachineMicrovm, 3 << 30, 3 << 30, 0},
		{MachineMicrovm, 3328 << 20, 0xc0000000, 256 << 20}, // the E820 map of a 3.25 GiB microvm guest
		{MachineMicrovm, 4 << 30, 0xc0000000, 1 << 30},
	} {
		if l, h := Layout(c.m, c.ram); l != c.low || h != c.high {
			t.Errorf("Layout(%s, %#x) = %#x, %#x; want %#x, %#x", c.m, c.ram, l, h, c.low, c.high)
		}
	}
}

// TestRAMRanges: the RAM backends' bytes, in node order, fill the
// machine's RAM below 4 GiB and then from 4 GiB (memfds are sparse, so
// the gigabytes cost nothing).
func TestRAMRanges(t *testing.T) {
	type rng struct{ gpa, size uint64 }
	for _, c := range []struct {
		name string
		c    Config
		want []rng
	}{
		{"512 MiB", Config{MemoryMB: 512}, []rng{{0, 512 << 20}}},
		{"4 GiB", Config{MemoryMB: 4096}, []rng{{0, 3 << 30}, {4 << 30, 1 << 30}}},
		{"3.25 GiB, microvm", Config{MemoryMB: 3328}, []rng{{0, 3 << 30}, {4 << 30, 256 << 20}}},
		{"3.25 GiB, pc", Config{MemoryMB: 3328, Machine: MachinePC}, []rng{{0, 3328 << 20}}},
		{"two nodes of 2 GiB", Config{MemoryMB: 4096, Topology: topology.Topology{Nodes: 2, LLCs: 2, Cores: 1, Threads: 1}},
			[]rng{{0, 2 << 30}, {2 << 30, 1 << 30}, {4 << 30, 1 << 30}}},
	} {
		vm := &VM{}
		inherit, conn, err := vm.prepare(c.c)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		closeAll(inherit)
		conn.Close()
		var got []rng
		vm.WithRAM(func(rs []introspect.Range) error {
			for _, r := range rs {
				got = append(got, rng{r.GPA, uint64(len(r.Mem))})
			}
			return nil
		})
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: ranges %v, want %v", c.name, got, c.want)
		}
		if _, err := introspect.NewPhysMem(vm.ranges...); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		vm.release()
		if err := vm.WithRAM(func([]introspect.Range) error { return nil }); !errors.Is(err, ErrReleased) {
			t.Errorf("%s: WithRAM after release: %v", c.name, err)
		}
	}
}
