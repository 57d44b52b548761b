# xenecho: `make` builds the kernel image; `make run` boots it on the emulated
# Xen host; `make test` runs every check (see README.md).

ARCH        ?= x86_64
TARGET      := $(ARCH)-unknown-none
IMAGE       := build/xenecho.elf
CARGO       ?= cargo
DOM0_SCRIPT ?=
TIMEOUT     ?= 900

# The e2e suite is one dom0 script: the shared helpers, then every check file.
E2E_PARTS   := tests/e2e/lib.sh $(sort $(wildcard tests/e2e/check-*.sh)) tests/e2e/summary.sh
E2E_SUITE   := build/e2e-suite.sh

.PHONY: all image run test test-host test-e2e deps fmt clippy clean

all: image

image: deps
	$(CARGO) build --release --target $(TARGET) -p xenecho
	@mkdir -p build
	cp target/$(TARGET)/release/xenecho $(IMAGE)
	@echo "built $(IMAGE) ($$(stat -c %s $(IMAGE)) bytes)"

# Rust targets and components the build needs (rust-toolchain.toml names them;
# this makes sure an older rustup installs them too).
deps:
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)

# Boots the emulated Xen host and starts the appliance with `xl create xl.cfg`.
# With DOM0_SCRIPT=path, runs that script in dom0 once the guest is up and
# exits with its status.
run: image
	testbed/run.sh --timeout $(TIMEOUT) $(if $(DOM0_SCRIPT),--script $(DOM0_SCRIPT))

test: test-host test-e2e

test-host: fmt clippy image
	$(CARGO) test --workspace
	tests/check-image.sh $(IMAGE)

fmt:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(TARGET) -p xenecho -- -D warnings

test-e2e: image
	cat $(E2E_PARTS) > $(E2E_SUITE)
	testbed/run.sh --timeout $(TIMEOUT) --script $(E2E_SUITE)

clean:
	$(CARGO) clean
	rm -rf build
