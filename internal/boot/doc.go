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
//	control.sock               control.Listen; handler (never blocks)
//	region                     shm.Create; replies start flowing
//	console.log, com2.log      capLog: first ConsoleHead + last ConsoleTail bytes
//	start the machine          qemu, own VMM, or hostVM (the agent in-process)
//	watch                      one watchdog for every backend
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
// deadline move and the first reply the ring refused, each with a
// summary; console logs are capped.
package boot
