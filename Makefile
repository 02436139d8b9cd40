# The tests need Debian's chromium for the dashboard's browser tests;
# `make test` installs it first (as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps

deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the dashboard's browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test: deps
	go test -count=1 -timeout 20m ./...
