# MCP auth sandbox. `make up` brings the stack up; `make test` proves it. `make help` lists all.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
# Compose's own builder, not Bake (its default since Compose 2.37): Bake needs buildx >= 0.17,
# which distribution-packaged Docker may lack, and builds with whichever buildx builder is
# current. Compose 2.40 warns that COMPOSE_BAKE=false is deprecated; the scripts keep build output,
# that warning included, in .local/logs/. (compose/.env carries it too, for every compose call.)
export COMPOSE_BAKE := false
# uv trusts the platform store (where a corporate TLS-intercepting CA lives), like pip and curl.
export UV_SYSTEM_CERTS := true

SCRIPTS := compose/scripts
# The compose files of this checkout's topology come from compose/.env (COMPOSE_FILE, env.sh).
COMPOSE := docker compose --project-directory compose
UV = $(shell $(SCRIPTS)/ensure-uv.sh)
PYTEST_ARGS ?=

.PHONY: help up down clean logs ps realm-sync test test-ha chaos test-remote test-unit interop synth lint agent bench lock rotate-keys reload-jwks prepare docker images env ca keys port browser interop-clients node-clients inspector

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1mmake %-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

up: prepare ## Bring the whole sandbox up over HTTPS (installs Docker if needed; idempotent)
	@$(SCRIPTS)/up.sh

down: ## Stop the sandbox, keeping Keycloak's data
	@$(COMPOSE) --profile agent down

clean: ## Remove containers, volumes, built images, the local CA and keys
	@$(SCRIPTS)/clean.sh

logs: ## Follow the logs of every service
	@$(COMPOSE) logs -f --tail=100

ps: ## Show the services and their health
	@$(COMPOSE) ps

realm-sync: ## Apply services/keycloak/realm/*.json to the running Keycloak, keeping its data (make up does it too); CHECK=1 only lists what would change
	@$(SCRIPTS)/realm-sync.sh $(if $(CHECK),--check /realm)

test: prepare browser interop-clients ## Run the whole suite: unit tests, the real stack (interop included), then the stack tests on TOPOLOGY=ha
	@$(UV) sync --frozen --quiet
	@$(UV) run --frozen pytest --durations=25 $(PYTEST_ARGS)
	@UV=$(UV) $(SCRIPTS)/test-ha.sh $(PYTEST_ARGS)

test-ha: prepare browser interop-clients ## Only the stack tests against the HA topology (PostgreSQL, 2 Keycloak nodes, 2 MCP replicas), then test-remote against it
	@$(UV) sync --frozen --quiet
	@UV=$(UV) $(SCRIPTS)/test-ha.sh $(PYTEST_ARGS)

chaos: prepare browser ## Faults under load on TOPOLOGY=ha (20 agents, 30 s phases): node, replica and database restarts, key rotation
	@$(UV) sync --frozen --quiet
	@CHAOS_AGENTS=$(or $(CHAOS_AGENTS),20) CHAOS_PHASE_SECONDS=$(or $(CHAOS_PHASE_SECONDS),30) UV=$(UV) $(SCRIPTS)/test-ha.sh --chaos $(PYTEST_ARGS)

test-remote: browser ## The black-box tests against any deployment, given by MCP_TEST_* variables (docs/topology.md)
	@$(UV) sync --frozen --quiet
	@UV=$(UV) $(SCRIPTS)/test-remote.sh $(PYTEST_ARGS)

interop: prepare browser interop-clients ## Only the client interop tests (third-party clients, conformance suite); rewrites docs/clients.md
	@$(UV) sync --frozen --quiet
	@$(UV) run --frozen pytest -m "interop or matrix" --clients-doc $(PYTEST_ARGS)

synth: node-clients ## Synthesize the AWS ECS/ALB template (deploy/aws; CONFIG=deploy/aws/config.toml) into deploy/aws/cdk.out
	@$(UV) sync --frozen --quiet
	@UV=$(UV) $(SCRIPTS)/synth.sh

lint: ## Lint and type-check the Python code (ruff; mypy, strict for the MCP server)
	@$(UV) sync --frozen --quiet
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy

test-unit: node-clients ## Only the unit tests (no Docker; Node 22 for the CDK synth in tests/deploy)
	@$(UV) run --frozen pytest -m "not integration" $(PYTEST_ARGS)

agent: prepare ## Log in through the demo agent in its container (browser on the host); ARGS="call get_time", ARGS=logout
	@$(SCRIPTS)/agent.sh $(or $(ARGS),login)

inspector: node-clients ## The MCP Inspector 2.x for the running sandbox (pinned, on Node 22 from tests/interop/node): prints the URL to open and what to type
	@$(SCRIPTS)/inspector.sh

bench: ## Benchmark: tool calls/s with auth vs without, with DPoP, vs JWKS-per-request, vs FastMCP, exchange cache vs none; fails below its targets (BENCH_ARGS=--keycloak: Keycloak's exchange rate, sandbox up)
	@$(UV) run --frozen python -m tests.bench.tool_call_throughput --peer-python "$$($(SCRIPTS)/ensure-bench-peer.sh)" $(BENCH_ARGS)

lock: ## Re-lock Python dependencies and re-export the services' requirements
	@$(UV) lock
	@$(UV) export --frozen --no-dev --package mcp-server --no-emit-workspace --no-header -q -o services/mcp-server/requirements.lock
	@$(UV) export --frozen --no-dev --package notes-api --no-emit-workspace --no-header -q -o services/api/requirements.lock
	@$(UV) export --frozen --no-dev --package mcp-agent --no-emit-workspace --no-header -q -o services/agent/requirements.lock
	@$(UV) export --frozen --no-dev --package realm-sync --no-emit-workspace --no-header -q -o services/realm-sync/requirements.lock
	@for f in tests/interop/python/*.in tests/bench/peer/*.in; do $(UV) pip compile --quiet --generate-hashes --python-version 3.11 "$$f" -o "$${f%.in}.txt"; done
	@for f in examples/*/requirements.in; do (cd "$$(dirname "$$f")" && $(UV) pip compile --quiet --generate-hashes --no-emit-package mcp-agent --python-version 3.11 requirements.in -o requirements.txt); done

rotate-keys: ## Rotate an agent's signing key (AGENT=demo|machine; the old key stays published)
	@$(SCRIPTS)/with-env.sh $(UV) run --frozen python -m cimd_host --state .local rotate --agent $(or $(AGENT),demo)
	@$(SCRIPTS)/with-env.sh $(SCRIPTS)/forget-keys.sh

reload-jwks: ## Make the MCP servers drop a withdrawn realm signing key now (SIGHUP: they fetch the JWKS)
	@$(SCRIPTS)/with-env.sh $(SCRIPTS)/reload-jwks.sh

# Everything both `up` and `test` need: engine, base images, settings, CA, keys.
prepare: docker images env ca keys port

docker:
	@$(SCRIPTS)/ensure-docker.sh

images: docker
	@$(SCRIPTS)/base-images.sh

env:
	@$(SCRIPTS)/env.sh

ca:
	@$(SCRIPTS)/ca.sh

browser:
	@$(SCRIPTS)/ensure-browser.sh

# Third-party MCP clients for tests/interop: Node ones (npm ci), Python ones (a virtualenv each).
interop-clients: node-clients
	@$(SCRIPTS)/ensure-python-clients.sh

# Node 22 and the npm packages (tests/interop/node): the Node clients, and jsii's Node for the CDK.
node-clients:
	@$(SCRIPTS)/ensure-node-clients.sh

port: docker env
	@$(SCRIPTS)/claim-port.sh

keys: env
	@$(SCRIPTS)/with-env.sh $(UV) run --frozen --quiet python -m cimd_host --state .local render --sandbox >/dev/null
