# xenecho: `make` builds the kernel image; `make run` boots it on the emulated
# Xen host; `make test` runs every check (see README.md).

# ARCH=x86_64 (default): a PVH ELF, build/xenecho.elf, started with xl.cfg.
# ARCH=aarch64: an arm64 Image, build/xenecho-arm64.img, started with
# xl-arm64.cfg (soft-float target: no FP/SIMD state to manage).
ARCH        ?= x86_64
ifeq ($(ARCH),aarch64)
TARGET      := aarch64-unknown-none-softfloat
IMAGE       := build/xenecho-arm64.img
else
TARGET      := $(ARCH)-unknown-none
IMAGE       := build/xenecho.elf
endif
CARGO       ?= cargo
DOM0_SCRIPT ?=
TIMEOUT     ?= 900
# The whole e2e suite on the x86_64 test host takes about 15 minutes.
E2E_TIMEOUT ?= 1800
# `make shell` has no time limit unless given one (seconds).
SHELL_TIMEOUT ?= 0
# The ports on this machine's 127.0.0.1 that `make run` and `make shell` forward to the
# appliance's HTTP and metrics ports (`auto`: free ones). `make test` picks free ones itself, so
# that it runs beside an open `make shell`.
HTTP_PORT_LOCAL    ?= 8080
METRICS_PORT_LOCAL ?= 8081
# VERBOSE=1: the whole serial console (Xen's and dom0's boot too) as it comes.
VERBOSE     ?=
VERBOSE_OPTION := $(if $(filter 1 yes true,$(VERBOSE)),--verbose)
RUN_OPTIONS  = --arch $(ARCH) --http-port $(HTTP_PORT_LOCAL) --metrics-port $(METRICS_PORT_LOCAL) $(VERBOSE_OPTION)

# x86_64's save + restore and migrate rounds in `make test` (check-19); `make test-suspend` runs
# that check alone with SUSPEND_ROUNDS_FULL of each.
SUSPEND_ROUNDS      ?= 1
SUSPEND_ROUNDS_FULL ?= 5

# The e2e suite is one dom0 script: the shared helpers, then every check file.
E2E_PARTS   := tests/e2e/lib.sh $(sort $(wildcard tests/e2e/check-*.sh)) tests/e2e/summary.sh
E2E_SUITE   := build/e2e-suite.sh
# ARM64: its own boot checks, then the x86_64 suite's HTTP, network and lifecycle checks.
ARM64_E2E_PARTS := tests/e2e/lib.sh tests/e2e-arm64/check-10-boot.sh \
                   $(filter-out tests/e2e/lib.sh tests/e2e/check-10-boot.sh,$(E2E_PARTS))
ARM64_E2E_SUITE := build/e2e-arm64-suite.sh

# The dom0 attack tool (tools/attack): a static x86_64 Linux binary in build/, which the testbed
# copies into dom0 with the rest of build/ (tests/e2e/check-14-attacks.sh runs it).
ATTACK_TOOL := build/xenecho-attack
HOST_TARGET := x86_64-unknown-linux-gnu

.PHONY: all image run shell test test-host test-e2e test-suspend test-libvirt test-two-hosts test-arm64 deps fmt clippy clippy-image doc doc-image clean attack-tool soak

all: image

image: deps
	$(CARGO) build --release --target $(TARGET) -p xenecho
	@mkdir -p build
ifeq ($(ARCH),aarch64)
	objcopy -I elf64-little -O binary target/$(TARGET)/release/xenecho $(IMAGE)
else
	cp target/$(TARGET)/release/xenecho $(IMAGE)
endif
	@echo "built $(IMAGE) ($$(stat -c %s $(IMAGE)) bytes)"

# Rust targets and components the build needs (rust-toolchain.toml names them;
# this makes sure an older rustup installs them too).
deps:
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)

attack-tool:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target $(HOST_TARGET) -p xenecho-attack
	@mkdir -p build
	cp target/$(HOST_TARGET)/release/xenecho-attack $(ATTACK_TOOL)

# Boots the emulated Xen host and starts the appliance with `xl create xl.cfg`:
# progress lines, then its console (Ctrl-] leaves). With DOM0_SCRIPT=path, runs
# that script in dom0 once the guest is up and exits with its status
# (examples/ has some). The appliance's ports are forwarded to this machine's
# 127.0.0.1 (HTTP_PORT_LOCAL, METRICS_PORT_LOCAL).
run: image $(if $(filter x86_64,$(ARCH)),attack-tool)
	testbed/run.sh $(RUN_OPTIONS) --timeout $(TIMEOUT) $(if $(DOM0_SCRIPT),--script $(DOM0_SCRIPT))

# Boots the emulated Xen host, starts the appliance, and leaves you in an
# interactive dom0 shell (GUEST_IP set; curl, wrk, xl console); `exit` powers
# the test host off.
shell: image $(if $(filter x86_64,$(ARCH)),attack-tool)
	testbed/run.sh $(RUN_OPTIONS) --shell --timeout $(SHELL_TIMEOUT)

test: test-host test-e2e

test-host: fmt clippy doc image
	tests/check-unsafe.sh
	$(CARGO) test --workspace
	tests/check-image.sh $(IMAGE)
	$(MAKE) --no-print-directory ARCH=aarch64 image clippy-image doc-image
	tests/check-image-arm64.sh build/xenecho-arm64.img
	python3 bench/fleet-report.py --check
	python3 bench/report.py --check

# The kernel image's target only (the host part of `clippy` is shared).
clippy-image: deps
	$(CARGO) clippy --release --target $(TARGET) -p xenecho -- -D warnings

# The ARM64 end-to-end tests on the emulated Xen-on-ARM host (boot, console,
# lifecycle, network): `make test` does not run them (see README.md).
test-arm64:
	$(MAKE) --no-print-directory ARCH=aarch64 image
	cat $(ARM64_E2E_PARTS) > $(ARM64_E2E_SUITE)
	testbed/run.sh --arch aarch64 --timeout $(TIMEOUT) --script $(ARM64_E2E_SUITE)

fmt:
	$(CARGO) fmt --all -- --check

# The API documentation, without a warning: every crate on the host, and the
# kernel image's crates on its target (the guest-only modules: arch, pv,
# hypercall).
doc: doc-image
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

doc-image: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --target $(TARGET) -p xenecho -p kernel -p xen-pv

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(TARGET) -p xenecho -- -D warnings

# The dom0 suite on the emulated Xen host, with the host-side checks (tests/e2e-host/: Python's
# http.client and a headless Chromium on this machine, through forwarded ports) run when the
# suite asks; then the image alone on plain QEMU (no Xen): its fatal message must reach COM1
# (tests/check-not-on-xen.sh).
test-e2e: image attack-tool
	{ cat tests/e2e/lib.sh; echo 'SUSPEND_ROUNDS=$(SUSPEND_ROUNDS)'; \
	  cat $(filter-out tests/e2e/lib.sh,$(E2E_PARTS)); } > $(E2E_SUITE)
	testbed/run.sh --timeout $(E2E_TIMEOUT) --script $(E2E_SUITE) --http-port auto --metrics-port auto \
	    --host-script tests/e2e-host/run.sh $(VERBOSE_OPTION)
	tests/check-not-on-xen.sh $(IMAGE)

# x86_64: `xl save` + `xl restore` and `xl migrate` to the same host, SUSPEND_ROUNDS_FULL (5)
# of each in a row, each with wrk running across the move (about 10 minutes).
test-suspend: image
	{ cat tests/e2e/lib.sh; echo 'SUSPEND_ROUNDS=$(SUSPEND_ROUNDS_FULL)'; \
	  cat tests/e2e/check-19-suspend.sh tests/e2e/summary.sh; } > build/e2e-suspend.sh
	testbed/run.sh --timeout $(E2E_TIMEOUT) --script build/e2e-suspend.sh

# x86_64: the libvirt checks alone (tests/e2e/check-24-libvirt.sh: xenecho.xml under libvirt's Xen
# driver, about 2 minutes on the test host); `make test` runs them with the rest of the suite.
test-libvirt: image
	{ cat tests/e2e/lib.sh tests/e2e/check-24-libvirt.sh tests/e2e/summary.sh; } > build/e2e-libvirt.sh
	testbed/run.sh --timeout $(TIMEOUT) --script build/e2e-libvirt.sh

# x86_64: two emulated Xen hosts joined by a wire of their own over loopback, and the appliance
# live-migrated from one to the other with `xl migrate` while wrk runs against it from the first
# (tests/two-hosts/run.sh; both hosts at once, about 4 minutes; .ci/run runs it after make test).
test-two-hosts: image
	tests/two-hosts/run.sh

clean:
	$(CARGO) clean
	rm -rf build

# `make bench` (x86_64): the appliance against Linux + nginx domUs (PVH and PV) and
# nginx alone in dom0 on one boot of the emulated Xen host, plus the host-side DMA
# micro-benchmark; regenerates docs/benchmarks.md and its chart (about 25 minutes; see
# bench/run.sh, e.g. BENCH_ARGS='--duration 5 --rounds 1 --no-memory' for a quick one,
# --no-pv-peer to leave the PV peer out). `make bench ARCH=aarch64`: the same on the emulated
# Xen-on-ARM host, the ARM64 image (xl-arm64.cfg) against a Linux arm64 + nginx domU (Xen on ARM
# has no PV guests: no PV peer); regenerates docs/benchmarks-arm64.md and its chart. The
# chart is a PNG through matplotlib, which this installs from PyPI when it is
# missing (`python3 -m pip install matplotlib`); without it, an SVG.
BENCH_ARGS  ?=
# x86_64 unless ARCH=aarch64.
BENCH_ARCH  := $(if $(filter aarch64,$(ARCH)),aarch64,x86_64)
.PHONY: bench
# 30 minutes of legitimate load, churn, attacks and pauses at once on the test host; writes
# docs/soak.md (SOAK_ARGS="--minutes N" for a shorter or longer one).
soak: image attack-tool
	tests/soak/run.sh $(SOAK_ARGS)

bench:
	$(MAKE) --no-print-directory ARCH=$(BENCH_ARCH) image
	@python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib \
	    || echo "bench: matplotlib could not be installed: the chart will be an SVG"
	bench/run.sh $(if $(filter aarch64,$(BENCH_ARCH)),--arch aarch64 )$(BENCH_ARGS)

# `make bench-fleet` (x86_64): appliances started one `xl create` at a time on one boot of the
# emulated Xen host, each with its own name, MAC and address and each checked to answer, to 128
# or until the host's memory runs out; then Linux + nginx guests the same way; writes
# docs/fleet.md (see bench/fleet.sh: FLEET_ARGS='--sizes "1 8 32" --no-linux' for a short one).
FLEET_ARGS ?=
.PHONY: bench-fleet
bench-fleet:
	$(MAKE) --no-print-directory ARCH=x86_64 image
	bench/fleet.sh $(FLEET_ARGS)
