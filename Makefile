# Recording Storage. `make help` lists the targets.
#
# The local emulator stack (goaws for SQS/SNS, versitygw for S3, on 127.0.0.1 only) is managed by
# .ci/stack; emulators are built into .emu/ on first use (versitygw: ~95 s cold), state lives in .stack/.

# The binary to build.
BIN ?= recording-storage
# The go command.
GO ?= go
# Packages to vet and test.
PKGS ?= ./...
# Extra flags for `go test` in `make test` (e.g. TESTFLAGS='-run TestStack -v').
TESTFLAGS ?=
# Extra flags for `go test` in `make bench` (e.g. BENCHFLAGS='-benchtime 3x').
BENCHFLAGS ?=
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s
# The fuzz targets `make fuzz` runs, as package:Target.
FUZZ_TARGETS ?= ./messages:FuzzParseJob ./messages:FuzzParseExpiration ./messages:FuzzNormalizeRoomPath
# The stack script and the env file it writes (RS_STACK_DIR overrides the .stack directory).
STACK ?= ./.ci/stack
STACK_ENV ?= $(or $(RS_STACK_DIR),.stack)/env

# Runs the rest of the recipe line with the stack up and its env sourced; always stops the stack
# and exits with the status of the command.
WITH_STACK = trap 'st=$$?; $(STACK) down; exit $$st' EXIT; trap 'exit 130' INT TERM; \
	$(STACK) up && . $(STACK_ENV) &&

.PHONY: all build test bench fuzz reliability demo stack-up stack-down stack-status deploy-tools deploy-check vet fmt-check lint clean distclean help

all: build

build: ## Build the ./recording-storage binary
	$(GO) build -o $(BIN) .

test: lint deploy-tools ## Vet and gofmt check, then start the stack, go test -race ./... (deploy/ included), stop the stack
	@$(WITH_STACK) $(GO) test -race -count=1 $(TESTFLAGS) $(PKGS)

deploy-tools: ## Build helm and fetch KEDA's ScaledObject CRD into .emu/ (pinned; first use only)
	./.ci/deploy-tools

deploy-check: deploy-tools ## The Helm chart, alert rule and dashboard checks alone (deploy/; needs promtool)
	$(GO) test -count=1 $(TESTFLAGS) ./deploy/

bench: ## Run the benchmarks (no tests) against the local stack; the transfer suite's JSON line comes last (.ci/bench)
	@$(WITH_STACK) GO='$(GO)' PKGS='$(PKGS)' BENCHFLAGS='$(BENCHFLAGS)' ./.ci/bench

fuzz: ## Run each fuzz target (the job parser, the expiration grammar, the room path) for FUZZTIME (30s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

reliability: ## The reliability suite at full length on the local stack: 30 SIGKILLs over 64 MiB recordings, SIGTERM drains, malformed messages, secrets, DRACOON and S3 faults over 16 jobs a mode, configuration faults, endless listings
	@$(WITH_STACK) RS_KILL_COUNT=$${RS_KILL_COUNT:-30} RS_KILL_SIZE_MIB=$${RS_KILL_SIZE_MIB:-64} RS_FAULT_JOBS=$${RS_FAULT_JOBS:-16} \
		$(GO) test -count=1 -v -timeout 45m -run 'TestRun_SIGKILL_suite|TestRun_SIGTERM|TestTransferCommand_no_secrets|TestRun_no_secrets|TestParse_malformed|TestParseJob_malformed|TestE2E_DRACOON_faults|TestE2E_S3_faults|TestRun_configuration_faults|TestListings_end|TestCutAnswer' . ./pipeline ./messages ./infra/dracoon

demo: build ## Run the main job end to end on the local stack (starts and stops it)
	@$(WITH_STACK) ./$(BIN) demo

stack-up: ## Start the local emulators (installs them on first use) and write .stack/env
	$(STACK) up

stack-down: ## Stop the local emulators and remove their data
	$(STACK) down

stack-status: ## Show the local emulators
	$(STACK) status

vet: ## go vet the service and the goaws wrapper module
	$(GO) vet $(PKGS)
	$(GO) vet -C infra/localstack/goaws ./...

fmt-check: ## Fail if any Go file is not gofmt-formatted
	@out=$$(find . \( -name .git -o -name .emu -o -name .stack -o -name testdata \) -prune \
		-o -name '*.go' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed on:" >&2; echo "$$out" >&2; exit 1; fi

lint: vet fmt-check ## go vet and the gofmt check

clean: ## Stop the stack, remove the binary and .stack/ (keeps the emulator cache .emu/)
	$(STACK) down
	rm -rf $(BIN) .stack

distclean: clean ## clean, and also remove the emulator cache .emu/
	rm -rf .emu

help: ## Print this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  %-13s %s\n", $$1, $$2 }'
