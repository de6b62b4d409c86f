# Canary and blue-green deployments with Istio: the front door.
# `make` alone prints the help below, generated from the `##@` sections and `## ` comments.

# Tool pins live in versions.env (read by scripts/*.sh); pnpm's in package.json.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c
.DEFAULT_GOAL := help
# No built-in rules: `make canary-` must not turn into `canary-.o`.
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

# TARGET (cluster or local), API, CLUSTER_NAME, KUBE_CONTEXT, GATEWAY_PORT, GATEWAY_URL: their defaults are in
# defaults.env, which the scripts and the CLI read; set one here (`make canary-25 TARGET=local`) or in the
# environment.
# A demo release fault on v2 (bad-v2, slow-v2: packages/cli/src/scenarios.ts); empty: none. On the cluster path
# through the chart values (make up, make progress TARGET=cluster: scripts/scenario.sh).
SCENARIO ?=
# `make progress`: the strategy walked, and how long each step bakes with traffic before its analysis (e.g. 10s).
STRATEGY ?= canary
BAKE ?=

# Pinned tools are installed into ./bin (LOCALBIN) and found there first.
LOCALBIN ?= $(CURDIR)/bin
export PATH := $(LOCALBIN):$(PATH)

ROLLOUT := node packages/cli/dist/main.js
CLI_DIST := packages/cli/dist/main.js
# pnpm at the version pinned in package.json ("packageManager"), fetched if missing.
PNPM := scripts/pnpm.sh

##@ General

.PHONY: help
help: ## Show this help.
	@if [ -t 1 ]; then c='\033[36m'; b='\033[1m'; r='\033[0m'; else c=; b=; r=; fi; \
	awk -v c="$$c" -v b="$$b" -v r="$$r" -v stages="$(STAGES)" 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make %s<target>%s [TARGET=cluster|local] [API=virtualservice|gateway-api]\n", c, r} \
		/^[a-zA-Z_0-9%$$()-][a-zA-Z_0-9%$$() -]*:.*?##/ { t = $$1; d = $$2; sub(/\$$\(CLI_DIST\)/, "", t); \
			if (t ~ /STAGES/) { t = "<stage>"; d = d " One of: " stages "." } sub(/%/, "<version>", t); printf "  %s%-18s%s %s\n", c, t, r, d } \
		/^##@/ { printf "\n%s%s%s\n", b, substr($$0, 5), r }' $(MAKEFILE_LIST)

SCENARIO_FLAG = $(if $(SCENARIO),--scenario $(SCENARIO))

##@ Local path (no Docker)

.PHONY: demo
demo: build ## Start v1 + v2 + the local gateway, walk every stage with verification and canary analysis, stop everything (SCENARIO=bad-v2|slow-v2).
	$(ROLLOUT) demo $(SCENARIO_FLAG)

.PHONY: local-up
local-up: build ## Start v1, v2 and the local gateway in the background (then `make <stage> TARGET=local`; SCENARIO=).
	$(ROLLOUT) local up $(SCENARIO_FLAG)

.PHONY: local-down
local-down: ## Stop the local path started by `make local-up`.
	$(ROLLOUT) local down

# One target per version of the chart's values (make run-v1, make run-v2); the CLI refuses any other.
run-%: build ## Run one app build in the foreground on its local-path port (v1 3001, v2 3002; PORT overrides).
	$(ROLLOUT) run $*

##@ Progressive delivery (thresholds in analysis.yaml)

.PHONY: progress
progress: build ## Walk STRATEGY=canary|blue-green with canary analysis at each step, roll back on a failure (TARGET=cluster|local; SCENARIO=, BAKE=).
	$(ROLLOUT) progress --strategy $(STRATEGY) $(SCENARIO_FLAG) $(if $(BAKE),--bake $(BAKE))

##@ Development

.PHONY: install
install: ## Install the workspace with the frozen lockfile (gets the pinned pnpm if missing).
	$(PNPM) install --frozen-lockfile

.PHONY: build
build: install ## Build every package and both app versions.
	$(PNPM) exec turbo run build --output-logs=errors-only

.PHONY: lint
lint: install ## Lint and format-check every package and script (biome), and the shell scripts (shellcheck).
	$(PNPM) exec turbo run lint lint:root --output-logs=errors-only
	@if command -v shellcheck >/dev/null; then shellcheck scripts/*.sh tooling/*/*.sh .ci/run && echo "shellcheck: clean"; \
	else echo "shellcheck not installed: skipped (make test installs it)"; fi

.PHONY: typecheck
typecheck: install ## Type-check every package, the k6 scripts included.
	$(PNPM) exec turbo run typecheck --output-logs=errors-only

.PHONY: test
test: ## Run the whole test suite (installs what it needs first); last line: passed/failed count.
	hack/test.sh

.PHONY: bench
bench: build ## Benchmarks: app vs bare Express, gateway vs direct (ratios measured in the same run).
	$(PNPM) exec turbo run bench --concurrency=1

.PHONY: stages
stages: build ## Print every stage and its expected split, derived from istio/stages/*.yaml.
	$(ROLLOUT) stages

##@ Cluster path (kind + Istio)

.PHONY: doctor
doctor: ## Preflight: Docker and its CPU/memory, tools and versions, the gateway port (GATEWAY_PORT), CPU architecture.
	scripts/doctor.sh

.PHONY: tools
tools: ## Install the pinned kind, kubectl, helm, istioctl and k6 into ./bin when missing.
	scripts/tools.sh

.PHONY: up
up: build ## Create the kind cluster, install Istio + Prometheus, build + load images, install the chart, apply `stable` (idempotent; SCENARIO=).
	SCENARIO=$(SCENARIO) scripts/cluster-up.sh

.PHONY: down
down: ## Delete the kind cluster and everything in it.
	scripts/cluster-down.sh

.PHONY: dashboards
dashboards: ## Install Istio's Prometheus and Kiali addons and port-forward them (Ctrl-C stops).
	scripts/dashboards.sh

##@ Stages (on the cluster; TARGET=local for the local path, API=gateway-api for the HTTPRoutes)

# One target per stage file, istio/stages/<stage>.yaml: the files are the list (`make stages` says what each means).
# Each prints the commands it runs: lint, kubectl apply, the wait for the gateway, the measurement.
# They need only the built CLI ($(CLI_DIST)): a rollback is never held up by a rebuild (after changing code,
# `make build`).
STAGES := $(sort $(basename $(notdir $(wildcard istio/stages/*.yaml))))
.PHONY: $(STAGES)
$(STAGES): $(CLI_DIST) ## Apply the stage's manifest and measure it.
	scripts/stage.sh $@
# Any other canary-N: the CLI refuses it with the list of valid stages (exit 2), not make's "No rule".
canary-%: $(CLI_DIST)
	scripts/stage.sh $@

.PHONY: rollback
rollback: $(CLI_DIST) ## All traffic back to the stable version: `green` after a blue-green stage, else `stable`.
	scripts/rollback.sh

.PHONY: verify
verify: $(CLI_DIST) ## Measure the applied stage again through GATEWAY_URL.
	scripts/verify.sh

.PHONY: status
status: $(CLI_DIST) ## Which stage is applied, and its expected split.
	scripts/status.sh

.PHONY: watch
# TARGET given (command line or environment): that one; else the local path when it runs, else the cluster.
watch: build ## Live traffic page for the applied stage on http://localhost:8090 (WATCH_PORT); Ctrl-C stops.
	WATCH_TARGET=$(or $(TARGET),auto) node packages/watch/dist/main.js

$(CLI_DIST):
	$(MAKE) --no-print-directory build
