package introspect

import (
	"fmt"
	"strconv"
)

// Hex is a 64-bit value (an address, a register) that JSON carries as a
// "0x..." string: a JSON number loses precision above 2^53.
type Hex uint64

// MarshalText writes "0x" and lowercase hex digits.
func (h Hex) MarshalText() ([]byte, error) {
	return []byte("0x" + strconv.FormatUint(uint64(h), 16)), nil
}

// UnmarshalText reads what MarshalText writes.
func (h *Hex) UnmarshalText(b []byte) error {
	s := string(b)
	if len(s) < 3 || s[:2] != "0x" {
		return fmt.Errorf("introspect: hex value %q lacks its 0x", s)
	}
	v, err := strconv.ParseUint(s[2:], 16, 64)
	*h = Hex(v)
	return err
}

// taskLayout is where task_struct keeps what a task walk reads.
type taskLayout struct {
	tasks, threadNode, signal, pid, start, comm uint64
	threadHead                                  uint64 // in signal_struct
}

func (g *Guest) taskLayout() (taskLayout, error) {
	ts, err := g.k.Struct("task_struct")
	if err != nil {
		return taskLayout{}, err
	}
	var l taskLayout
	for _, f := range []struct {
		path string
		off  *uint64
	}{{"tasks", &l.tasks}, {"thread_node", &l.threadNode}, {"signal", &l.signal}, {"pid", &l.pid}, {"start_time", &l.start}, {"comm", &l.comm}} {
		fl, err := FieldOf(ts, f.path)
		if err != nil {
			return taskLayout{}, err
		}
		*f.off = fl.Offset
	}
	ss, err := g.k.Struct("signal_struct")
	if err != nil {
		return taskLayout{}, err
	}
	fl, err := FieldOf(ss, "thread_head")
	if err != nil {
		return taskLayout{}, err
	}
	l.threadHead = fl.Offset
	return l, nil
}

// FindTask returns the address of the task_struct whose pid is pid, and,
// when startNS is not 0, whose start_time is startNS (a reused pid is
// another task). It walks init_task's process list and each process's
// threads, at most MaxTasks entries; a list the guest corrupted ends the
// walk with an error, never a hang.
func (g *Guest) FindTask(pid uint32, startNS uint64) (uint64, error) {
	l, err := g.taskLayout()
	if err != nil {
		return 0, err
	}
	init, _, err := g.k.Symbol("init_task")
	if err != nil {
		return 0, err
	}
	seen := 0
	var reused bool
	// check looks at one task; found reports a match.
	check := func(task uint64) (bool, error) {
		p, err := g.Uint(task+l.pid, 4)
		if err != nil {
			return false, err
		}
		if uint32(p) != pid {
			return false, nil
		}
		st, err := g.U64(task + l.start)
		if err != nil {
			return false, err
		}
		if startNS != 0 && st != startNS {
			reused = true
			return false, nil
		}
		return true, nil
	}
	// walk follows the list_head at head, calling fn for each entry
	// until it returns true.
	walk := func(head, off uint64, fn func(task uint64) (bool, error)) (uint64, error) {
		cur := head
		for {
			next, err := g.U64(cur)
			if err != nil {
				return 0, fmt.Errorf("task list: %w", err)
			}
			if next == head {
				return 0, nil
			}
			if seen++; seen > MaxTasks {
				return 0, fmt.Errorf("introspect: task list longer than %d entries (corrupt?)", MaxTasks)
			}
			task := next - off
			ok, err := fn(task)
			if err != nil {
				return 0, fmt.Errorf("task list: %w", err)
			}
			if ok {
				return task, nil
			}
			cur = next
		}
	}
	if ok, err := check(init); err != nil || ok {
		return init, err
	}
	var found uint64
	if _, err := walk(init+l.tasks, l.tasks, func(leader uint64) (bool, error) {
		sig, err := g.U64(leader + l.signal)
		if err != nil {
			return false, err
		}
		found, err = walk(sig+l.threadHead, l.threadNode, check)
		return found != 0, err
	}); err != nil {
		return 0, err
	}
	if found != 0 {
		return found, nil
	}
	if reused {
		return 0, fmt.Errorf("%w: pid %d now belongs to a task started at another time than %d ns", ErrTaskGone, pid, startNS)
	}
	return 0, fmt.Errorf("%w: no task with pid %d", ErrTaskGone, pid)
}
