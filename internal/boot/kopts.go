package boot

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNoSchedExt is CheckSchedExt's error: the kernel was built without
// sched_ext.
var ErrNoSchedExt = errors.New("boot: kernel without sched_ext")

// SchedExtOption is the option a kernel needs to run a sched_ext
// scheduler (it depends on BPF_SYSCALL, BPF_JIT and DEBUG_INFO_BTF, so
// it being on means they are too).
const SchedExtOption = "CONFIG_SCHED_CLASS_EXT"

// maxKconfig bounds an embedded or neighbouring configuration (a full
// distribution config is about 300 KiB).
const maxKconfig = 4 << 20

// KernelOptions returns the build configuration of the kernel image at
// kernel, option name to value ("y", "m", a number or a quoted string;
// an option "is not set" is absent), and where it came from: the
// configuration the image carries itself (CONFIG_IKCONFIG: a gzip
// stream between the markers IKCFG_ST and IKCFG_ED in the kernel,
// which the bzImage carries compressed; read when that compression is
// gzip), else the file KernelConfig finds next to the image. ok is false
// when neither can be read.
func KernelOptions(kernel string) (opts map[string]string, source string, ok bool) {
	if b, err := embeddedConfig(kernel); err == nil {
		return parseKconfig(b), kernel + " (embedded, CONFIG_IKCONFIG)", true
	}
	f, ok := KernelConfig(kernel)
	if !ok {
		return nil, "", false
	}
	fh, err := os.Open(f.Src)
	if err != nil {
		return nil, "", false
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxKconfig))
	if err != nil {
		return nil, "", false
	}
	return parseKconfig(b), f.Src, true
}

// CheckSchedExt says whether the kernel image at kernel can run a
// sched_ext scheduler: an error wrapping ErrNoSchedExt, naming the
// missing option and where the configuration was read, when its
// configuration says no; nil when it says yes or cannot be found (the
// guest then reports a scheduler that cannot attach).
func CheckSchedExt(kernel string) error {
	opts, src, ok := KernelOptions(kernel)
	if !ok {
		return nil
	}
	if opts[SchedExtOption] != "y" {
		return fmt.Errorf("%w: %s is not set (configuration from %s); a --scheduler needs it (make kernel builds one with it)", ErrNoSchedExt, SchedExtOption, src)
	}
	return nil
}

// parseKconfig reads "CONFIG_X=value" lines.
func parseKconfig(b []byte) map[string]string {
	opts := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.HasPrefix(k, "CONFIG_") {
			opts[k] = v
		}
	}
	return opts
}

var (
	ikcfgStart = []byte("IKCFG_ST")
	gzipMagic  = []byte{0x1f, 0x8b}
)

// embeddedConfig returns the configuration a bzImage carries
// (CONFIG_IKCONFIG). Its payload (the compressed kernel) starts at
// (setup_sects+1)*512 + payload_offset and is payload_length bytes long
// (boot protocol 2.08); only a gzip payload is read.
func embeddedConfig(kernel string) ([]byte, error) {
	f, err := os.Open(kernel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var hdr [0x250]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, err
	}
	if string(hdr[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(hdr[0x206:]) < 0x208 {
		return nil, errors.New("not a bzImage of boot protocol 2.08 or later")
	}
	sects := int64(hdr[0x1f1])
	if sects == 0 {
		sects = 4
	}
	off := (sects+1)*512 + int64(binary.LittleEndian.Uint32(hdr[0x248:]))
	n := int64(binary.LittleEndian.Uint32(hdr[0x24c:]))
	if off+n > st.Size() || n < 2 {
		return nil, errors.New("payload outside the image")
	}
	payload := io.NewSectionReader(f, off, n)
	var magic [2]byte
	if _, err := payload.ReadAt(magic[:], 0); err != nil || !bytes.Equal(magic[:], gzipMagic) {
		return nil, errors.New("payload not gzip-compressed")
	}
	zr, err := gzip.NewReader(payload)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	// The kernel is a few tens of MiB; the configuration lies in it.
	rest, err := after(io.LimitReader(zr, MaxKernelSize*4), ikcfgStart)
	if err != nil {
		return nil, err
	}
	cr, err := gzip.NewReader(rest)
	if err != nil {
		return nil, err
	}
	cr.Multistream(false)
	b, err := io.ReadAll(io.LimitReader(cr, maxKconfig+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKconfig {
		return nil, errors.New("embedded configuration too large")
	}
	return b, nil
}

// after reads r up to the first occurrence of marker and returns a
// reader of what follows it.
func after(r io.Reader, marker []byte) (io.Reader, error) {
	buf := make([]byte, 0, 256<<10)
	chunk := make([]byte, 128<<10)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if i := bytes.Index(buf, marker); i >= 0 {
			return io.MultiReader(bytes.NewReader(buf[i+len(marker):]), r), nil
		}
		if err == io.EOF {
			return nil, fmt.Errorf("no %s marker: the kernel was built without CONFIG_IKCONFIG", marker)
		}
		if err != nil {
			return nil, err
		}
		// Keep the tail that could hold the start of the marker.
		if keep := len(marker) - 1; len(buf) > keep {
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
	}
}
