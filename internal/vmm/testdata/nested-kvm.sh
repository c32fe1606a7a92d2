#!/bin/sh
# Run the vmm package's tests against hardware-style KVM on a host that has
# none (no kvm_intel/kvm_amd; /dev/kvm missing or served by PVM): boot
# Debian's kernel under QEMU's software emulation (TCG) with an emulated AMD
# SVM CPU, load kvm_amd inside, and run the test binary there. Slow (every
# guest instruction is emulated, nested ones too) but it runs the Linux
# boot test and the tiny-guest tests for real.
#
# usage: internal/vmm/testdata/nested-kvm.sh [go test flags, comma-separated]
#   e.g. nested-kvm.sh -test.run=BootLinux|Program
#        nested-kvm.sh -test.run=XXX,-test.bench=.,-test.benchtime=20000x
# NESTED_GOFLAGS adds flags to go test -c (e.g. -race); NESTED_SMP sets the
# outer guest's CPUs (default: one more than the largest inner machine,
# so every inner vCPU can have an outer CPU of its own), NESTED_QEMU the
# outer QEMU (default: what scripts/nested-qemu gives, QEMU 10 or later;
# scripts/test-own-vmm's header says why both);
# NESTED_BOOT_TOPOLOGIES the Linux boot test's multi-CPU shapes (its
# KTSTR_VMM_BOOT_TOPOLOGIES, "A;B"). The project kernel and its vmlinux
# (make kernel) go along when they are there, unless NESTED_PVH=0, and
# the boot test boots them through the PVH entry and the 64-bit entry.
# needs: go, qemu-system-x86_64, cpio, xz, apt-get (to download the
# kernel's modules, and on Debian 12 QEMU 10, once), the kernel from
# scripts/fetch-kernel (or $KTSTR_KERNEL).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
pkg=$(cd "$here/.." && pwd)
cache=$("$pkg/../../scripts/cache-dir")
kernel=${KTSTR_KERNEL:-$cache/debian/vmlinuz}
[ -f "$kernel" ] || { echo "nested-kvm: no kernel at $kernel (run scripts/fetch-kernel)" >&2; exit 2; }
# The module package matches the kernel's release: the vmlinuz-<release> next to it.
release=$(ls "$(dirname "$kernel")" | sed -n 's/^vmlinuz-//p' | head -1)
[ -n "$release" ] || { echo "nested-kvm: cannot tell the kernel release (want vmlinuz-<release> next to $kernel)" >&2; exit 2; }
mods=$("$pkg/../../scripts/nested-kvm-modules" "$release") || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/mods" "$work/root/proc" "$work/root/sys" "$work/root/dev" "$work/root/tmp"
build() { # a static test binary: the guest has no libc
	case " ${NESTED_GOFLAGS:-} " in
	*" -race "*) CGO_ENABLED=1 go test -c -ldflags '-linkmode external -extldflags -static' "$@" ;;
	*) CGO_ENABLED=0 go test -c "$@" ;;
	esac
}
(cd "$pkg" && build ${NESTED_GOFLAGS:-} -o "$work/root/vmm.test" . && CGO_ENABLED=0 go build -o "$work/root/init" ./testdata/nested)
cp "$mods"/*.ko "$work/root/mods/"
cp "$kernel" "$work/root/vmlinuz"
# The project kernel and its vmlinux, when make kernel built them, for the
# boot through the PVH entry (KTSTR_PVH_KERNEL and KTSTR_PVH_VMLINUX in
# the outer guest; the test skips that case without them).
pvh=$(readlink -f "$cache/kernel/bzImage" 2>/dev/null || true)
if [ "${NESTED_PVH:-1}" != 0 ] && [ -n "$pvh" ] && [ -f "$pvh" ] && [ -f "$(dirname "$pvh")/vmlinux" ]; then
	cp "$pvh" "$work/root/pvh-bzImage"
	cp "$(dirname "$pvh")/vmlinux" "$work/root/pvh-vmlinux"
fi
(cd "$work/root" && find . | cpio -o -H newc 2>/dev/null) > "$work/initramfs"
args=$(echo "${*:-}" | tr ' ' ',')
# The largest inner machine: linux_test.go's 1,2,2,2 or one given.
cpus=$(echo "1,2,2,2;${NESTED_BOOT_TOPOLOGIES:-}" | tr ';' '\n' | awk -F, 'NF == 4 && $2 * $3 * $4 > m { m = $2 * $3 * $4 } END { print m }')
qemu=$("$pkg/../../scripts/nested-qemu") || exit 1
"$qemu" -accel tcg,thread=multi -M pc -cpu max -smp "${NESTED_SMP:-$((cpus + 1))}" -m 2048 \
	-display none -nodefaults -no-user-config -no-reboot -serial stdio \
	-kernel "$kernel" -initrd "$work/initramfs" \
	-append "console=ttyS0 reboot=t panic=-1 quiet ktstr.testargs=$args${NESTED_BOOT_TOPOLOGIES:+ ktstr.boottopo=$NESTED_BOOT_TOPOLOGIES}" | tee "$work/log"
status=$(sed -n 's/^NESTED-EXIT \([0-9]*\).*/\1/p' "$work/log" | tail -1)
exit "${status:-1}"
