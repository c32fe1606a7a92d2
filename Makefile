# ktstr (Go): build, test and run the scheduler test pipeline.
#
#   make demo     install what is missing, fetch a kernel, run the default scenario
#   make test     the whole test suite (race detector on), including real VMs
#   make test-scenarios  every canned scenario in a VM (make test runs a quick set)
#   make lint     gofmt, go vet, staticcheck
#   make bench    benchmarks
#   make man      lint the man pages
#   make compare  EEVDF vs scx_simple on the latency scenario, 5 runs each, A/B table
#   make kernel   build the project's sched_ext kernel into the cache
#                 (KSRC=/path/to/linux: from your own kernel tree)

GO       ?= go
BIN      := bin
CMDS     := ktstr-boot ktstr-drain ktstr-dispatch ktstr-verdict ktstr-matrix ktstr-compare
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
export CGO_ENABLED := 0
# urfave/cli without its Markdown and man page generators (which this
# project does not use): their package initialisers (blackfriday's tables)
# are 2 of the 3 ms every tool spends before main natively, and the guest
# agent, which is ktstr-boot, pays them under emulation too (its start to
# "up" about 30 ms less, median of 8 alternating boots); 0.4 MB less in
# each binary. Exported, so the go builds that tests and scripts run get
# it; a build without it behaves the same.
export GOFLAGS ?= -tags=urfave_cli_no_docs

.PHONY: compare all build test test-scenarios test-short test-nested test-own-vmm lint bench man demo deps kernel schedulers clean

all: build

build:
	$(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

# deps installs the Debian packages the real-VM tests and the demo need
# (skipped when present) and Debian's prebuilt kernel into the cache.
deps:
	scripts/install-deps
	scripts/fetch-kernel >/dev/null

demo: deps build
	scripts/demo

# compare: is scx_simple faster or slower than EEVDF on the latency
# scenario? 5 runs each in VMs, then ktstr-compare's table (its exit
# status: 1 when scx_simple regressed a metric).
compare: deps build
	scripts/compare-schedulers

# The real-VM tests (internal/e2e) judge timing (fairness, gaps) inside
# emulated guests, so they run alone, after the other packages: go test
# runs packages side by side, and a race-instrumented package spinning
# next to a VM starves its vCPUs.
E2E      := ./internal/e2e
test: build
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v '/internal/e2e$$')
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m $(E2E)

# Every canned scenario in a VM under EEVDF (make test runs a quick set;
# internal/e2e's quickCanned): 47 VM runs, about 4 minutes here.
test-scenarios: build
	KTSTR_E2E_SCENARIOS=all CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m -run 'TestVMCannedScenarios' $(E2E)

test-short:
	$(GO) test -short -count=1 ./...

# The own VMM's tests against hardware-style KVM on a host without it:
# QEMU's software emulation provides an AMD SVM CPU and kvm_amd loads
# inside (internal/vmm/testdata/nested-kvm.sh); the Linux boot included.
test-nested:
	internal/vmm/testdata/nested-kvm.sh

# The whole pipeline with --vmm own, the same way (slower).
test-own-vmm:
	scripts/test-own-vmm

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...

man:
	scripts/lint-man

# KSRC=/path/to/linux builds the fragment from your own tree (cached by
# its commit and a hash of its uncommitted changes) and prints the
# bzImage's path.
kernel:
ifdef KSRC
	KSRC="$(KSRC)" scripts/build-kernel
else
	scripts/build-kernel >/dev/null
endif

schedulers:
	scripts/build-schedulers >/dev/null

clean:
	rm -rf $(BIN)
