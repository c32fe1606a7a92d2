// Package control is the control socket between ktstr-dispatch and
// ktstr-boot: a Unix stream socket in the run directory (mode 0600) over
// which ktstr-dispatch sends effect records and ktstr-boot acts on them:
// kill the VM, move the watchdog deadline, answer snapshot and kernel-op
// requests.
//
// The stream is the msgpack form of ktstr-records(5), the same records
// ktstr-dispatch writes on stdout, one per effect, flushed one by one:
//
//	ktstr-dispatch                           ktstr-boot
//	Dial(path) ──── connect (retries) ────▶  Listen(path, handle)
//	Send(effect) ── msgpack map ──────────▶  handle(effect), in order
//	Close() ─────── EOF ──────────────────▶  Disconnected() closes
//
// Records of other kinds are ignored by the server. A client whose peer
// has gone (the VM ended) gets ErrGone and stops forwarding; its records
// still go to stdout.
//
// The socket is made with golang.org/x/sys/unix, not the net package:
// with cgo on, net links the C library's resolver, and ktstr-boot, the
// guest's /init where there is no libc, must stay static however a Go
// user builds it. The socket's mode is set without following a link put
// in its place.
package control
