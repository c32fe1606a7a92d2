// Package boot is the host side of ktstr-boot: it prepares a run
// directory (initramfs, shared region, control socket), picks a backend,
// runs the guest under a watchdog, answers control requests and records
// how the guest ended in the region, where ktstr-drain picks it up.
//
// One run, in order:
//
//	check /init is static      checkStaticInit (a dynamic /init cannot boot)
//	open the run directory     runDir: a real directory of this user, 0700,
//	                           no region yet; files made relative to it with
//	                           O_CREAT|O_EXCL|O_NOFOLLOW
//	initramfs.cpio             BuildInitramfs (Layout checked the names first)
//	host.frames                hostFrames: HDMP and HMON for ktstr-drain
//	control.sock               control.Listen; handler (never blocks), with
//	                           an inspector for snapshots and kernel ops
//	region                     shm.Create; replies start flowing
//	console.log, com2.log      capLog: first ConsoleHead + last ConsoleTail bytes
//	start the machine          qemu, own VMM, or hostVM (the agent in-process);
//	                           the inspector attaches to it (a target)
//	monitor                    when the scenario asks: samples every 100 ms
//	watch                      one watchdog for every backend; a failure
//	                           dump before it stops the guest
//	classify, MarkClosed       how it ended, for ktstr-drain's VEND
//
// Every backend is a machine (Done, Kill, Err), so signals, the kill
// effect and the deadline act the same way on a VM and on host mode.
// The watchdog's deadline starts at Config.Timeout, moves with the
// watchdog_deadline effects ktstr-dispatch sends (only the latest counts),
// and never passes Config.Timeout from the start.
//
// Nothing the guest sends can block ktstr-boot or grow what it keeps: the
// control handler keeps the latest deadline and a one-slot kill, queues at
// most replyQueue replies (the rest are counted), and logs the first
// deadline move and a summary; console logs are capped.
//
// Looking into the guest (inspect.go, monitor.go; package introspect
// does the reading): each backend is a target that freezes and thaws its
// vCPUs, reads their registers and lends its RAM while it stays mapped.
// The inspector's one worker answers SNRQ and KORQ from a queue of
// inspectQueue (more are dropped and counted); one freeze runs at a time
// (a capture, a Cold op, the failure dump), each bounded by
// FreezeTimeout. Snapshot files are at most MaxSnapshots; host.frames at
// most drain.MaxHostFrames.
package boot
