package introspect

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Errors a kernel lookup wraps.
var (
	// ErrNoVmlinux: the run has no vmlinux, so nothing can be looked up
	// by name.
	ErrNoVmlinux = errors.New("introspect: no vmlinux for this kernel (symbols and BTF unavailable)")
	// ErrUnknownSymbol: the name is not in vmlinux's symbol table.
	ErrUnknownSymbol = errors.New("introspect: unknown symbol")
	// ErrNoType: the kernel's BTF has no struct or union of that name.
	ErrNoType = errors.New("introspect: type not in BTF")
	// ErrNoField: the type has no member on that path.
	ErrNoField = errors.New("introspect: field not in BTF")
)

// symbol is one ELF symbol of vmlinux.
type symbol struct {
	value  uint64
	size   uint64
	global bool
	percpu bool // in .data..percpu: value is an offset from a CPU's per-CPU base
	dup    bool // several local symbols of this name with different values
}

// Kernel is what vmlinux says about a kernel: the addresses of its symbols
// (ELF symbol table) and the layout of its types (the kernel's BTF, parsed
// by cilium/ebpf's btf package). vmlinux may have its DWARF stripped:
// objcopy --strip-debug keeps both.
type Kernel struct {
	Path   string
	Banner string // linux_banner as built ("Linux version ..."), "" if absent
	syms   map[string]symbol
	spec   *btf.Spec
	percpu map[string]btf.Type // per-CPU variables' types (BTF's .data..percpu section)
	// roStart, roEnd bound the image's text and read-only data:
	// [_text, __end_rodata). Kernel ops never write there.
	roStart, roEnd uint64
}

// OpenKernel reads the symbol table and BTF of the vmlinux at path.
func OpenKernel(path string) (*Kernel, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("introspect: vmlinux: %w", err)
	}
	defer f.Close()
	k, err := loadKernel(f)
	if err != nil {
		return nil, fmt.Errorf("introspect: vmlinux %s: %w", path, err)
	}
	k.Path = path
	return k, nil
}

func loadKernel(f *elf.File) (*Kernel, error) {
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("not an x86-64 ELF (%v %v)", f.Class, f.Machine)
	}
	esyms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbol table: %w", err)
	}
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, errors.New("no .BTF section (build the kernel with CONFIG_DEBUG_INFO_BTF=y)")
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".BTF: %w", err)
	}
	syms := make([]elfSym, 0, len(esyms))
	for _, s := range esyms {
		t := elf.ST_TYPE(s.Info)
		if s.Name == "" || t == elf.STT_SECTION || t == elf.STT_FILE {
			continue
		}
		es := elfSym{Name: s.Name, Value: s.Value, Size: s.Size, Global: elf.ST_BIND(s.Info) != elf.STB_LOCAL}
		if int(s.Section) < len(f.Sections) && s.Section != elf.SHN_UNDEF {
			es.PerCPU = f.Sections[s.Section].Name == ".data..percpu"
		}
		syms = append(syms, es)
	}
	k, err := newKernel(syms, raw)
	if err != nil {
		return nil, err
	}
	k.Banner = elfString(f, k.syms["linux_banner"].value, 512)
	return k, nil
}

// elfSym is a symbol as newKernel takes it (tests build their own).
type elfSym struct {
	Name        string
	Value, Size uint64
	Global      bool
	PerCPU      bool
}

// newKernel builds a Kernel from symbols and a raw BTF blob.
func newKernel(esyms []elfSym, rawBTF []byte) (*Kernel, error) {
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(rawBTF))
	if err != nil {
		return nil, fmt.Errorf("BTF: %w", err)
	}
	k := &Kernel{syms: make(map[string]symbol, len(esyms)), spec: spec, percpu: map[string]btf.Type{}}
	for _, s := range esyms {
		n := symbol{value: s.Value, size: s.Size, global: s.Global, percpu: s.PerCPU}
		old, ok := k.syms[s.Name]
		switch {
		case !ok, s.Global && !old.global:
			k.syms[s.Name] = n
		case !old.global && !s.Global && old.value != s.Value:
			old.dup = true
			k.syms[s.Name] = old
		}
	}
	var ds *btf.Datasec
	if err := spec.TypeByName(".data..percpu", &ds); err == nil {
		for _, v := range ds.Vars {
			if vr, ok := v.Type.(*btf.Var); ok {
				k.percpu[vr.Name] = vr.Type
			}
		}
	}
	k.roStart = k.syms["_text"].value
	k.roEnd = k.syms["__end_rodata"].value
	if k.roEnd == 0 {
		k.roEnd = k.syms["_etext"].value
	}
	return k, nil
}

// elfString reads a NUL-terminated string at virtual address addr from
// the section that holds it (for linux_banner).
func elfString(f *elf.File, addr uint64, max int) string {
	if addr == 0 {
		return ""
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_PROGBITS || addr < s.Addr || addr >= s.Addr+s.Size {
			continue
		}
		b := make([]byte, min(uint64(max), s.Addr+s.Size-addr))
		n, err := s.ReadAt(b, int64(addr-s.Addr))
		if err != nil && !errors.Is(err, io.EOF) {
			return ""
		}
		b = b[:n]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	return ""
}

// Symbol returns the address of a (non-per-CPU) symbol and its ELF size.
func (k *Kernel) Symbol(name string) (addr, size uint64, err error) {
	s, err := k.sym(name)
	if err != nil {
		return 0, 0, err
	}
	if s.percpu {
		return 0, 0, fmt.Errorf("symbol %s is per-CPU: read it as a per-CPU field", name)
	}
	return s.value, s.size, nil
}

func (k *Kernel) sym(name string) (symbol, error) {
	if k == nil {
		return symbol{}, ErrNoVmlinux
	}
	s, ok := k.syms[name]
	if !ok {
		return symbol{}, fmt.Errorf("%w %s", ErrUnknownSymbol, name)
	}
	if s.dup {
		return symbol{}, fmt.Errorf("symbol %s is ambiguous: several local symbols of that name", name)
	}
	return s, nil
}

// Has reports whether vmlinux has a symbol of that name.
func (k *Kernel) Has(name string) bool {
	if k == nil {
		return false
	}
	_, ok := k.syms[name]
	return ok
}

// PerCPU returns a per-CPU variable's offset from a CPU's per-CPU base and
// its type (nil if BTF does not describe it).
func (k *Kernel) PerCPU(name string) (uint64, btf.Type, error) {
	s, err := k.sym(name)
	if err != nil {
		return 0, nil, err
	}
	if !s.percpu {
		return 0, nil, fmt.Errorf("symbol %s is not per-CPU", name)
	}
	return s.value, k.percpu[name], nil
}

// Struct returns the struct (or union) type of that name.
func (k *Kernel) Struct(name string) (btf.Type, error) {
	if k == nil {
		return nil, ErrNoVmlinux
	}
	ts, _ := k.spec.AnyTypesByName(name)
	for _, t := range ts {
		switch t.(type) {
		case *btf.Struct, *btf.Union:
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: struct %s", ErrNoType, name)
}

// Enum returns the enumerator names of an enum type, by value.
func (k *Kernel) Enum(name string) (map[uint64]string, error) {
	if k == nil {
		return nil, ErrNoVmlinux
	}
	var e *btf.Enum
	if err := k.spec.TypeByName(name, &e); err != nil {
		return nil, fmt.Errorf("%w: enum %s", ErrNoType, name)
	}
	m := make(map[uint64]string, len(e.Values))
	for _, v := range e.Values {
		m[v.Value] = v.Name
	}
	return m, nil
}

// Field is a member found on a path: its byte offset from the start of
// the outer type, its size and its type (qualifiers and typedefs
// stripped).
type Field struct {
	Offset uint64
	Size   uint64
	Type   btf.Type
}

// FieldOf resolves path in t: member names separated by dots, each
// optionally indexed ("scx.local_dsq.nr", "comm", "cpus[2]"). Members of
// anonymous structs and unions are found as the C compiler finds them.
// An empty path is t itself. Bitfields are refused: they have no byte
// address.
func FieldOf(t btf.Type, path string) (Field, error) {
	cur := btf.UnderlyingType(t)
	sz, err := btf.Sizeof(cur)
	if err != nil {
		return Field{}, fmt.Errorf("%w: %v: %v", ErrNoField, t, err)
	}
	f := Field{Size: uint64(sz), Type: cur}
	if path == "" {
		return f, nil
	}
	for _, part := range strings.Split(path, ".") {
		name, idx, hasIdx, err := splitIndex(part)
		if err != nil {
			return Field{}, fmt.Errorf("%w: %s: %v", ErrNoField, path, err)
		}
		off, mt, err := member(f.Type, name)
		if err != nil {
			return Field{}, fmt.Errorf("%w: %s in %s (%v)", ErrNoField, path, typeName(t), err)
		}
		f.Offset += off
		f.Type = btf.UnderlyingType(mt)
		if hasIdx {
			arr, ok := f.Type.(*btf.Array)
			if !ok {
				return Field{}, fmt.Errorf("%w: %s: %s is not an array", ErrNoField, path, name)
			}
			if idx >= uint64(arr.Nelems) {
				return Field{}, fmt.Errorf("%w: %s: index %d past %s's %d elements", ErrNoField, path, idx, name, arr.Nelems)
			}
			esz, err := btf.Sizeof(arr.Type)
			if err != nil {
				return Field{}, fmt.Errorf("%w: %s: %v", ErrNoField, path, err)
			}
			f.Offset += idx * uint64(esz)
			f.Type = btf.UnderlyingType(arr.Type)
		}
		sz, err := btf.Sizeof(f.Type)
		if err != nil {
			return Field{}, fmt.Errorf("%w: %s: %v", ErrNoField, path, err)
		}
		f.Size = uint64(sz)
	}
	return f, nil
}

func splitIndex(part string) (name string, idx uint64, has bool, err error) {
	i := strings.IndexByte(part, '[')
	if i < 0 {
		return part, 0, false, nil
	}
	if !strings.HasSuffix(part, "]") {
		return "", 0, false, fmt.Errorf("bad index in %q", part)
	}
	idx, err = strconv.ParseUint(part[i+1:len(part)-1], 10, 32)
	if err != nil {
		return "", 0, false, fmt.Errorf("bad index in %q", part)
	}
	return part[:i], idx, true, nil
}

// member finds name among t's members, descending into anonymous ones.
func member(t btf.Type, name string) (uint64, btf.Type, error) {
	var ms []btf.Member
	switch c := t.(type) {
	case *btf.Struct:
		ms = c.Members
	case *btf.Union:
		ms = c.Members
	default:
		return 0, nil, fmt.Errorf("%v has no members", t)
	}
	for _, m := range ms {
		if m.Name == name {
			if m.BitfieldSize != 0 || m.Offset%8 != 0 {
				return 0, nil, fmt.Errorf("%s is a bitfield", name)
			}
			return uint64(m.Offset / 8), m.Type, nil
		}
	}
	for _, m := range ms {
		if m.Name != "" {
			continue
		}
		if off, mt, err := member(btf.UnderlyingType(m.Type), name); err == nil {
			return uint64(m.Offset/8) + off, mt, nil
		}
	}
	return 0, nil, fmt.Errorf("no member %s", name)
}

func typeName(t btf.Type) string {
	switch c := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		return "struct " + c.Name
	case *btf.Union:
		return "union " + c.Name
	}
	return fmt.Sprint(t)
}
