package qemu

import (
	"slices"
	"testing"
)

// TestArgsEscapeCommas: a run directory with a comma in its path must not
// split QEMU's option lists; every path inside one has its commas doubled.
func TestArgsEscapeCommas(t *testing.T) {
	c := Config{Kernel: "/r,d/k", Initrd: "/r,d/initramfs.cpio", Cmdline: "a,b", CPUs: 1, MemoryMB: 128,
		Region: "/r,d/region", RegionSize: 1 << 20, Console: "/r,d/console.log", COM2: "/r,d/com2.log"}
	args := c.Args()
	for _, want := range []string{
		"file,id=com1,path=/r,,d/console.log",
		"file,id=com2,path=/r,,d/com2.log",
		"memory-backend-file,id=ktstr,mem-path=/r,,d/region,share=on,size=1048576",
		"/r,d/k", "/r,d/initramfs.cpio", "a,b", // taken whole by QEMU
	} {
		if !slices.Contains(args, want) {
			t.Errorf("Args() = %q, want it to contain %q", args, want)
		}
	}
}
