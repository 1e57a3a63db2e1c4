# etcd-bootstrap: `make demo` runs the main job on an embedded default seed, `make test` runs the tests.
# Both install what they need on a fresh Debian (bookworm) machine; run them as root.

CARGO ?= cargo
# The node architecture of `make static` and `make deb`: amd64 (the default) or arm64, built on
# this x86_64 machine with Debian's aarch64 cross compiler for the C parts (ring).
ARCH ?= amd64
ifeq ($(ARCH),amd64)
MUSL_TARGET := x86_64-unknown-linux-musl
DEB := target/debian/etcd-bootstrap.deb
else ifeq ($(ARCH),arm64)
MUSL_TARGET := aarch64-unknown-linux-musl
DEB := target/debian/etcd-bootstrap-arm64.deb
export CC_aarch64_unknown_linux_musl := aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER := aarch64-linux-gnu-gcc
else
$(error ARCH must be amd64 or arm64, not $(ARCH))
endif
STATIC_BIN := target/$(MUSL_TARGET)/release/etcd-bootstrap
FIXTURES := target/fixtures

.PHONY: all build static deps fixtures test lint demo demo-clean clean-test-leftovers deb debroot e2e-vm bench

all: build

build:
	$(CARGO) build --release

deps:
	bash tests/support/install-deps.sh

# A static binary for node images: musl, no libc needed on the node. file's verdict is shown, then
# required (not through `tee /dev/stderr`: tee truncates a log file that stderr is redirected to).
static: deps
	$(CARGO) build --release --target $(MUSL_TARGET)
	@kind=$$(file $(STATIC_BIN)); echo "$$kind"; case "$$kind" in *"statically linked"*) ;; \
		*) echo "$(STATIC_BIN) is not statically linked" >&2; exit 1 ;; esac

# The .deb: static binary, first-boot unit, sysusers entry, man pages, completions. The assets
# come from the amd64 binary, which runs here (they are text, the same for every architecture).
HOST_STATIC := target/x86_64-unknown-linux-musl/release/etcd-bootstrap
deb: static
	@command -v cargo-deb >/dev/null 2>&1 || $(CARGO) install cargo-deb --locked
	@[ -x $(HOST_STATIC) ] || $(MAKE) static ARCH=amd64
	$(HOST_STATIC) generate-assets target/assets
	$(CARGO) deb --no-build --no-strip --target $(MUSL_TARGET) --output $(DEB)

# A Debian root (debootstrap) the packaging tests install the .deb into. Made once.
DEBROOT := target/debroot
debroot: $(DEBROOT)/.done
$(DEBROOT)/.done:
	rm -rf $(DEBROOT).tmp
	debootstrap --variant=minbase --include=systemd bookworm $(DEBROOT).tmp "$$(sh tests/support/debian-mirror.sh)"
	rm -rf $(DEBROOT) && mv $(DEBROOT).tmp $(DEBROOT) && touch $@

fixtures: deps
	bash tests/support/fixtures.sh $(FIXTURES)

clean-test-leftovers:
	bash tests/support/cleanup.sh

# Everything: unit tests, and integration tests with real etcd, TLS, namespaces and wg0.
# A test that cannot run here (arm64 without binfmt) fails under CI=true and is otherwise skipped
# loudly: each skip is listed after the run (target/test-skips.log).
test: deps fixtures clean-test-leftovers static deb debroot
	$(MAKE) static deb ARCH=arm64
	@rm -f target/test-skips.log
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast --features failpoints; \
	else \
		$(CARGO) test --no-fail-fast --features failpoints; \
	fi; rc=$$?; \
	if [ -s target/test-skips.log ]; then \
		echo "$$(wc -l < target/test-skips.log) test(s) SKIPPED (they prove nothing here):"; \
		sed 's/^/  /' target/test-skips.log; \
	fi; exit $$rc
	bash tests/support/cleanup.sh

# Formatting, clippy (with and without the test-only failpoints), and the crate's layers: no import
# cycle, every import pointing down, no function over 80 lines.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features failpoints -- -D warnings
	python3 tests/support/layers.py

demo: deps fixtures build
	bash tests/support/demo.sh up

demo-clean:
	bash tests/support/demo.sh down

# Speed and memory, side by side with the shell baseline; writes BENCHMARKS.md.
bench: deps fixtures build static
	bash tests/bench/run.sh

# Three qemu VMs (TCG) booting an image made like Packer would: cloud-init and kernel-cmdline seeds,
# wg-quick, a healthy cluster, a reboot that does not re-run the bootstrap. Slow: not in `make test`.
e2e-vm: deps fixtures static
	bash tests/e2e/vm.sh
