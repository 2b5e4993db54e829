# Portico — build, run, test.
GO      ?= go
BIN     := bin/portico
H2SPEC_VERSION := v2.2.1+incompatible

.PHONY: all build run test bench bench-proxy lint tools services golden

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/portico

## run: the quick start in one process — admin API on 127.0.0.1:9080 (it prints the URL and
## the admin token), SQLite store and PKI in ./data, the gateway on :8080/:8443 with the demo
## backends, ops on 127.0.0.1:9901. The quick start is loaded into an empty store.
run: build
	./$(BIN) run

## test: every test, with the race detector; installs the test tools (h2spec) into the Go
## bin folder and starts the services the tests use (Redis) when they are down.
test: tools services
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

## services: Redis (rate-limit tests) and PostgreSQL (store tests), started only if down.
services:
	@bash hack/ensure-services

## tools: test tools, installed outside the repo and reused across runs.
tools:
	@command -v h2spec >/dev/null 2>&1 || test -x "$$($(GO) env GOPATH)/bin/h2spec" || \
		$(GO) install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)
	@# kube-apiserver and etcd for the Kubernetes tests: built once (~10 min) into
	@# ~/.cache/portico, here rather than inside a test binary's 10-minute timeout.
	@hack/kube-binaries >/dev/null

## golden: regenerate translation golden files after an intended change (review the diff).
golden:
	$(GO) test ./internal/translate -update

## bench: Go micro-benchmarks; bench-proxy: Portico against nginx (see bench/README.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

bench-proxy:
	bash bench/proxy.sh

## bench-cp: control plane propagation, memory and apply time against nginx (see bench/README.md).
.PHONY: bench-cp
bench-cp:
	bash bench/controlplane.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
