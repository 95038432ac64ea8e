# The README's two commands: `make demo` and `make test`. Each installs what it needs.
.PHONY: demo test build clean bench
demo:
	scripts/demo
test:
	scripts/test
build:
	scripts/setup && swift build
clean:
	rm -rf .build
bench:
	QUICK=$(QUICK) scripts/bench
