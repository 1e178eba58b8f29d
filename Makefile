# Thin wrappers over cargo. `make run` and `make test` do all set-up themselves.

CARGO ?= cargo
VENV := $(CURDIR)/target/e2e-venv
export PALISADE_PYTHON ?= $(VENV)/bin/python3

.PHONY: run test setup setup-test build release lint fmt e2e bench fuzz images clean

## run: install what is missing, build (release), and run `palisade up` on the embedded default
run: setup release
	./target/release/palisade up

## test: install what is missing, then lints and the whole test suite; the end-to-end tests run
## a second time against the distributed mode (one process per service)
test: setup-test lint
	$(CARGO) build -p palisade
	$(CARGO) test --workspace --no-fail-fast
	PALISADE_TEST_MODE=distributed $(CARGO) test -p palisade-e2e --no-fail-fast

setup:
	@scripts/setup-debian.sh

setup-test:
	@scripts/setup-debian.sh --test
	@scripts/install-deploy-tools.sh

## build: debug build of the palisade binary
build: setup
	$(CARGO) build -p palisade

## release: optimised build of the palisade binary
release: setup
	$(CARGO) build --release -p palisade

## lint: formatting and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## e2e: only the end-to-end tests (real processes), embedded then distributed
e2e: setup-test
	$(CARGO) build -p palisade
	$(CARGO) test -p palisade-e2e
	PALISADE_TEST_MODE=distributed $(CARGO) test -p palisade-e2e

## bench: every benchmark (results go in bench/RESULTS.md)
bench: setup
	$(CARGO) bench -p palisade-bench

## fuzz: every cargo-fuzz target for FUZZ_SECONDS (default 20) each
fuzz: setup
	scripts/fuzz.sh

## images: the static binary and its container image (deploy/images; needs buildah, podman or docker)
images: setup
	deploy/images/build.sh

clean:
	$(CARGO) clean
