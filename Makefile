# The tests need Debian's chromium for the dashboard's browser tests and
# iproute2 (ip) for the network-namespace testbed; `make test` installs
# them first (as root, or through sudo). The testbed's scenarios run only as
# root (they make namespaces and TUN devices); `.ci/run` is root and sets
# AGORA_TESTBED=required so that they cannot be skipped there.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps bench

deps:
	@command -v chromium >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 || { \
		echo "installing chromium (browser tests) and iproute2 (testbed)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium iproute2; }

# The testbeds (dozens of daemons and nodes) run after the other packages,
# not beside them: on 2 cores they would starve the multi-process tests.
test: deps
	go test -count=1 -timeout 20m $$(go list ./... | grep -v /testbed/)
	go test -count=1 -timeout 20m ./testbed/...

# Every benchmark of the project, one after another, rewriting docs/perf.md
# above its marker line and docs/img/perf-*.png (cmd/agora-bench). The
# benchmarks take 4-10 minutes on 2 cores, plus 2-3 minutes for the scale
# simulation of testbed/sim at 30 nodes (BENCHFLAGS='-skip scale-sim' leaves it out);
# BENCHFLAGS=-short is a smoke run, BENCHFLAGS='-only delegation' one job.
bench:
	go run ./cmd/agora-bench $(BENCHFLAGS)
