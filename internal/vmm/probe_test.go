package vmm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	sys := func(mods ...string) string {
		d, err := os.MkdirTemp(dir, "sys")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mods {
			os.MkdirAll(filepath.Join(d, m), 0o755)
		}
		return d
	}
	missing := filepath.Join(dir, "no-kvm")
	for _, c := range []struct {
		name string
		sys  string
		dev  string
		want Backend
		err  string
	}{
		{"no device, no module", sys(), missing, Backend{Kind: KindNone}, "no " + missing},
		{"module but no device", sys("kvm", "kvm_amd"), missing, Backend{Kind: KindNone, Module: "kvm_amd"}, "no " + missing},
		{"not a KVM device", sys("kvm_intel"), "/dev/null", Backend{Kind: KindNone, Module: "kvm_intel"}, "KVM_GET_API_VERSION"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := probe(c.sys, c.dev)
			if b != c.want || err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("probe = %+v, %v; want %+v and an error about %q", b, err, c.want, c.err)
			}
		})
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Skip("no /dev/kvm: the kinds of a working device are not checked")
	}
	for _, c := range []struct {
		mods []string
		want Backend
	}{
		{[]string{"kvm", "kvm_intel"}, Backend{KindHardware, "kvm_intel"}},
		{[]string{"kvm", "kvm_amd"}, Backend{KindHardware, "kvm_amd"}},
		{[]string{"kvm", "kvm_pvm"}, Backend{KindSoftware, "kvm_pvm"}},
		{[]string{"kvm"}, Backend{KindSoftware, ""}},
	} {
		b, err := probe(sys(c.mods...), "/dev/kvm")
		if err != nil {
			t.Skipf("/dev/kvm unusable: %v", err)
		}
		if b != c.want {
			t.Errorf("probe with modules %v = %+v, want %+v", c.mods, b, c.want)
		}
	}
}

func TestBackendString(t *testing.T) {
	for _, c := range []struct {
		b    Backend
		want string
		boot bool
	}{
		{Backend{KindHardware, "kvm_amd"}, "hardware KVM (kvm_amd)", true},
		{Backend{KindSoftware, "kvm_pvm"}, "software KVM (kvm_pvm): runs small guest programs, cannot boot a stock kernel", false},
		{Backend{KindNone, ""}, "no KVM", false},
		{Backend{KindNone, "kvm_intel"}, "no usable /dev/kvm (kvm_intel loaded)", false},
	} {
		if got := c.b.String(); got != c.want || c.b.CanBootLinux() != c.boot {
			t.Errorf("%+v: String() = %q, CanBootLinux() = %v; want %q, %v", c.b, got, c.b.CanBootLinux(), c.want, c.boot)
		}
	}
}
