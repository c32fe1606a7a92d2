package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ivshmem-plain's PCI identity.
const (
	ivshmemVendor = "0x1af4"
	ivshmemDevice = "0x1110"
)

// mapRegion finds the shared region and maps it: first an ivshmem PCI
// device (QEMU), through its BAR 2 resource file; then a physical range
// named on the kernel command line (KTSTR_SHM_BASE, KTSTR_SHM_SIZE), through
// /dev/mem (ktstr-boot's own VMM). It returns the mapping and where it came
// from.
func mapRegion(cmdline map[string]string) ([]byte, string, error) {
	devs, _ := filepath.Glob("/sys/bus/pci/devices/*")
	for _, d := range devs {
		if readTrim(d+"/vendor") != ivshmemVendor || readTrim(d+"/device") != ivshmemDevice {
			continue
		}
		// Memory decoding on: firmware does it on QEMU's pc machine
		// (SeaBIOS), nothing does on microvm, whose PCIe devices stay
		// disabled until a driver (here, sysfs) enables them; a BAR read
		// through a disabled device reads all ones.
		if readTrim(d+"/enable") == "0" {
			if err := os.WriteFile(d+"/enable", []byte("1"), 0); err != nil {
				return nil, "", fmt.Errorf("ivshmem %s: enable: %w", filepath.Base(d), err)
			}
		}
		res := d + "/resource2"
		m, err := mapFile(res, 0, -1)
		if err != nil {
			return nil, "", fmt.Errorf("ivshmem %s: %w", res, err)
		}
		return m, "ivshmem " + filepath.Base(d), nil
	}
	base, okb := cmdline["KTSTR_SHM_BASE"]
	size, oks := cmdline["KTSTR_SHM_SIZE"]
	if !okb || !oks {
		return nil, "", fmt.Errorf("no ivshmem device and no KTSTR_SHM_BASE/KTSTR_SHM_SIZE on the command line")
	}
	b, err := parseHex(base)
	if err != nil {
		return nil, "", fmt.Errorf("KTSTR_SHM_BASE: %w", err)
	}
	s, err := parseHex(size)
	if err != nil {
		return nil, "", fmt.Errorf("KTSTR_SHM_SIZE: %w", err)
	}
	if b%uint64(os.Getpagesize()) != 0 || s == 0 || s > 1<<31 {
		return nil, "", fmt.Errorf("KTSTR_SHM_BASE=%#x KTSTR_SHM_SIZE=%#x: not a page-aligned range up to 2 GiB", b, s)
	}
	m, err := mapFile("/dev/mem", int64(b), int(s))
	if err != nil {
		return nil, "", fmt.Errorf("/dev/mem at %#x: %w", b, err)
	}
	return m, fmt.Sprintf("/dev/mem %#x+%#x", b, s), nil
}

// mapFile maps size bytes of path at off (size -1: the whole file),
// shared and read-write. /dev/mem is opened without O_SYNC so the mapping
// is write-back cached.
func mapFile(path string, off int64, size int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		size = int(st.Size())
	}
	return unix.Mmap(int(f.Fd()), off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func parseHex(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	return strconv.ParseUint(s, 16, 64)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseCmdline splits /proc/cmdline into key=value pairs (a bare word maps
// to "").
func parseCmdline(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}
