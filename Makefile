# The whole test suite: `make test`. It installs what the tests need
# (npm packages for the JavaScript compatibility tests, tmux for the
# dashboard test, redis-server for the Redis store's tests), runs vet,
# gofmt, every Go test with the race detector and the command-line tests,
# and cleans up after itself.

GO        ?= go
GOFLAGS   ?=
export GOFLAGS

.PHONY: all build test deps vet fmt-check gotest clitest run clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

run:
	$(GO) run ./cmd/p2pd

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './compat/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

gotest:
	$(GO) test -race -count=1 -timeout 15m ./...

clitest: build
	./scripts/clitest.sh

test: deps vet fmt-check gotest clitest

clean:
	rm -rf bin compat/node_modules
