# pibackup: backupctl, the recovery image and their tests.
# Every target that needs system packages installs them first (make deps).

SHELL := /bin/bash
GO ?= go
BOARD ?= qemu-virt-arm64
OUT ?= out
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

.PHONY: all build deps test unit-test qemu-test soak stress-test demo image bench lint fuzz deb release clean

all: build

# Debian packages the tests and the demo use, QEMU 10 from bookworm-backports
# (the list is in the script; .ci/run runs it too).
deps:
	@./scripts/deps.sh

build:
	mkdir -p $(OUT)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/backupctl ./backupctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(OUT)/buildimage ./buildimage

# The whole suite: unit, loop-device, server and QEMU tests. Run as root.
# PIBACKUP_TEST_REQUIRE=all turns every "skipped: needs ..." into a failure.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 80m -p 2 ./...

unit-test:
	$(GO) test -count=1 ./...

qemu-test: deps
	PIBACKUP_SLOW_QEMU=1 $(GO) test -count=1 -timeout 60m -v ./qemu-tests/...

# The fixture Pi in QEMU backing itself up night after night: SOAK_NIGHTS
# (default 30) simulated nights of daily rsync, weekly tgz and monthly dd
# with smart recycle, then restores and boots; per-backup figures in
# $(OUT)/soak.json. make test runs the same test with 3 nights.
SOAK_NIGHTS ?= 30
soak: deps
	SOAK_NIGHTS=$(SOAK_NIGHTS) SOAK_JSON=$(abspath $(OUT))/soak.json $(GO) test -count=1 -timeout 300m -v -run 'TestSoak$$' ./qemu-tests/

# The fault and QEMU tests STRESS_RUNS times (default 5) while the other
# packages' tests load the machine; every failure is reported with its log.
stress-test: deps
	GO=$(GO) OUT=$(OUT) ./scripts/stress.sh

image: deps
	$(GO) run ./buildimage -board $(BOARD) -version $(VERSION) -o $(OUT)/recovery-$(BOARD).img

demo: deps build
	./scripts/demo.sh

bench: deps build
	./scripts/bench.sh

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.1 ./...

fuzz:
	FUZZTIME=$(or $(FUZZTIME),30s) ./scripts/fuzz.sh

deb:
	$(GO) run ./packaging/mkdeb -version $(VERSION) -commit $(COMMIT) -date $(DATE) -o $(OUT)

release: deps
	VERSION=$(VERSION) COMMIT=$(COMMIT) DATE=$(DATE) OUT=$(OUT) GO=$(GO) ./scripts/release.sh

clean:
	rm -rf $(OUT)
