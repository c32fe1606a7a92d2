// Command schedwrap runs a sched_ext scheduler the way the e2e tests need
// it to misbehave, or checks the guest first:
//
//	schedwrap [-require-boot-config] [-sleep D] [-detach-after D] [-fail-if A=B] SCHEDULER [ARG...]
//
// -require-boot-config fails unless /boot/config-$(uname -r) exists;
// -sleep waits D before it execs the scheduler (a slow attach);
// -detach-after starts the scheduler as a child, makes it unregister
// cleanly (SIGINT) D after sched_ext reports it attached, and stays alive
// until it gets SIGINT or SIGTERM itself (a scheduler that detaches
// mid-run while its process lives); -fail-if exits 1 at once, before the
// scheduler starts, when A equals B (a gauntlet's scheduler option
// -fail-if={repeat}=2 fails every second repeat on purpose). It is built statically by the e2e
// tests and runs in the guest.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	requireConfig := flag.Bool("require-boot-config", false, "fail unless /boot/config-$(uname -r) exists")
	sleep := flag.Duration("sleep", 0, "wait this long before starting the scheduler")
	detach := flag.Duration("detach-after", 0, "make the scheduler unregister after this long, and stay alive")
	failIf := flag.String("fail-if", "", "exit 1 before starting the scheduler when A=B has A equal to B")
	flag.Parse()
	if a, b, ok := strings.Cut(*failIf, "="); ok && a == b {
		fmt.Fprintf(os.Stderr, "schedwrap: failing on purpose (-fail-if %s)\n", *failIf)
		os.Exit(1)
	}
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "schedwrap: no scheduler")
		os.Exit(2)
	}
	args := flag.Args()
	if *requireConfig {
		var u unix.Utsname
		unix.Uname(&u)
		p := "/boot/config-" + unix.ByteSliceToString(u.Release[:])
		st, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "schedwrap: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("schedwrap: %s: %d bytes\n", p, st.Size())
	}
	if *sleep > 0 {
		fmt.Printf("schedwrap: sleeping %v before starting %s\n", *sleep, args[0])
		time.Sleep(*sleep)
	}
	if *detach == 0 {
		err := syscall.Exec(args[0], args, os.Environ())
		fmt.Fprintf(os.Stderr, "schedwrap: exec %s: %v\n", args[0], err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "schedwrap: %v\n", err)
		os.Exit(1)
	}
	attached := make(chan struct{})
	go func() {
		for {
			if b, _ := os.ReadFile("/sys/kernel/sched_ext/state"); strings.TrimSpace(string(b)) == "enabled" {
				close(attached)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for _, wait := range []<-chan struct{}{attached, after(attached, *detach)} {
		select {
		case <-wait:
		case <-sigs:
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
			return
		}
	}
	fmt.Printf("schedwrap: making %s unregister (SIGINT) after %v\n", args[0], *detach)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	fmt.Printf("schedwrap: %s ended (%v); staying alive\n", args[0], err)
	<-sigs
}

// after is closed d after c is.
func after(c <-chan struct{}, d time.Duration) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		<-c
		time.Sleep(d)
		close(out)
	}()
	return out
}
