package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
)

// QMP is a client of QEMU's machine protocol on a unix socket: one command
// at a time, each answered within a deadline; asynchronous events are
// skipped. After a timeout or an I/O error the client is broken (the next
// answer could belong to the timed-out command) and every later command
// fails with ErrQMP.
type QMP struct {
	mu     sync.Mutex
	conn   qmpConn
	sc     *bufio.Scanner
	broken error
}

// qmpConn is the socket to QEMU: an *os.File over a non-blocking socket
// (the package net would make ktstr-boot, the guest's static /init,
// link against the C library).
type qmpConn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// ErrQMP is wrapped by every QMP failure.
var ErrQMP = errors.New("qemu: qmp")

// maxQMPLine bounds one QMP message ("info registers -a" of 256 vCPUs is
// about 1 MiB).
const maxQMPLine = 16 << 20

// newQMP takes conn, QEMU's QMP socket, reads the greeting and enters
// command mode, within timeout.
func newQMP(conn qmpConn, timeout time.Duration) (*QMP, error) {
	q := &QMP{conn: conn, sc: bufio.NewScanner(conn)}
	q.sc.Buffer(make([]byte, 64<<10), maxQMPLine)
	conn.SetDeadline(time.Now().Add(timeout))
	if !q.sc.Scan() {
		conn.Close()
		return nil, fmt.Errorf("%w: no greeting: %v", ErrQMP, q.sc.Err())
	}
	if _, err := q.Execute("qmp_capabilities", nil, timeout); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

// Execute runs one command with its arguments (nil for none) and returns
// its "return" value.
func (q *QMP) Execute(cmd string, args any, timeout time.Duration) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.broken != nil {
		return nil, q.broken
	}
	msg := map[string]any{"execute": cmd}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	q.conn.SetDeadline(time.Now().Add(timeout))
	fail := func(err error) (json.RawMessage, error) {
		q.broken = fmt.Errorf("%w: %s: %v", ErrQMP, cmd, err)
		return nil, q.broken
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return fail(err)
	}
	for q.sc.Scan() {
		var r struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(q.sc.Bytes(), &r); err != nil {
			return fail(fmt.Errorf("bad message: %v", err))
		}
		switch {
		case r.Event != "":
			continue
		case r.Error != nil:
			return nil, fmt.Errorf("%w: %s: %s: %s", ErrQMP, cmd, r.Error.Class, r.Error.Desc)
		default:
			return r.Return, nil
		}
	}
	err = q.sc.Err()
	if err == nil {
		err = errors.New("connection closed")
	}
	return fail(err)
}

// HMP runs a human monitor command and returns its output.
func (q *QMP) HMP(line string, timeout time.Duration) (string, error) {
	r, err := q.Execute("human-monitor-command", map[string]string{"command-line": line}, timeout)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", fmt.Errorf("%w: human-monitor-command: %v", ErrQMP, err)
	}
	return s, nil
}

// Registers returns every vCPU's registers ("info registers -a"). QEMU
// synchronises each vCPU's state first, so it works on a running guest
// too, each vCPU read at a slightly different moment.
func (q *QMP) Registers(timeout time.Duration) ([]introspect.Regs, error) {
	out, err := q.HMP("info registers -a", timeout)
	if err != nil {
		return nil, err
	}
	return ParseRegisters(out)
}

// registerDump's patterns, compiled by the first ParseRegisters: this
// executable is also the guest's agent and its workers, whose starts would
// otherwise compile them for nothing.
var registerDump = sync.OnceValues(func() (cpuHeader, regPair *regexp.Regexp) {
	return regexp.MustCompile(`(?m)^CPU#(\d+)\s*$`),
		regexp.MustCompile(`\b([A-Z][A-Z0-9]*) ?=([0-9a-f]+)\b`)
})

// ParseRegisters reads the output of "info registers -a" (QEMU's x86
// dump: "CPU#N" then KEY=hex pairs) into one Regs per vCPU, in order. A
// vCPU not in long mode (an application processor the kernel has not
// started yet) is dumped with 32-bit names (EAX, EIP, EFL); those fill the
// same fields. Each vCPU must show its instruction pointer and CR0, CR3
// and CR4.
func ParseRegisters(out string) ([]introspect.Regs, error) {
	cpuHeader, regPair := registerDump()
	heads := cpuHeader.FindAllStringSubmatchIndex(out, -1)
	if len(heads) == 0 {
		heads = [][]int{{0, 0, 0, 0}} // one vCPU, no header
	}
	regs := make([]introspect.Regs, 0, len(heads))
	for i, h := range heads {
		end := len(out)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		var r introspect.Regs
		fields := map[string]*introspect.Hex{
			"RAX": &r.RAX, "RBX": &r.RBX, "RCX": &r.RCX, "RDX": &r.RDX, "RSI": &r.RSI, "RDI": &r.RDI,
			"RBP": &r.RBP, "RSP": &r.RSP, "R8": &r.R8, "R9": &r.R9, "R10": &r.R10, "R11": &r.R11,
			"R12": &r.R12, "R13": &r.R13, "R14": &r.R14, "R15": &r.R15, "RIP": &r.RIP, "RFL": &r.RFLAGS,
			"EAX": &r.RAX, "EBX": &r.RBX, "ECX": &r.RCX, "EDX": &r.RDX, "ESI": &r.RSI, "EDI": &r.RDI,
			"EBP": &r.RBP, "ESP": &r.RSP, "EIP": &r.RIP, "EFL": &r.RFLAGS,
			"CR0": &r.CR0, "CR2": &r.CR2, "CR3": &r.CR3, "CR4": &r.CR4, "EFER": &r.EFER,
		}
		seen := map[string]bool{}
		for _, m := range regPair.FindAllStringSubmatch(out[h[1]:end], -1) {
			if m[1] == "HLT" {
				r.Halted = m[2] == "1"
				continue
			}
			p, ok := fields[m[1]]
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(m[2], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: info registers: %s=%s: %v", ErrQMP, m[1], m[2], err)
			}
			*p = introspect.Hex(v)
			seen[m[1]] = true
		}
		if !(seen["RIP"] || seen["EIP"]) || !seen["CR0"] || !seen["CR3"] || !seen["CR4"] {
			return nil, fmt.Errorf("%w: info registers: vCPU %d: no instruction pointer, CR0, CR3 or CR4 in %q", ErrQMP, i, strings.TrimSpace(out[h[1]:min(end, h[1]+200)]))
		}
		regs = append(regs, r)
	}
	return regs, nil
}
