# geogrid — two commands on a fresh Debian/Ubuntu machine:
#   make demo   the main job end to end (generate the demo city, load it, report)
#   make test   the test suite against a real PostGIS
# Both provision what they need: system packages, a virtualenv, a PostGIS database.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PORT ?= 8000
SERVE ?= 1
# demo keys only (development environment); real deployments set GEOGRID_API_KEYS themselves
DEMO_KEYS ?= demo-planner:planner,demo-commander:commander,demo-admin:admin

.PHONY: demo test bench sysdeps db db-test maps-assets clean-venv lint check-fresh

$(STAMP): pyproject.toml requirements.lock
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "geogrid needs Python 3.11+"'
	@$(PY) -m venv $(VENV) 2>/dev/null || { scripts/apt-install.sh python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	@touch $@

sysdeps:
	@scripts/apt-install.sh gdal-bin chromium fonts-wqy-microhei

# front-end packages come from npm at build time (lock file committed, node_modules not); the web map
# is bundled from maps/web into api/static/map (generated, not committed; esbuild takes under a second)
maps-assets:
	@if [ -f maps/package-lock.json ] && [ ! maps/node_modules/.installed -nt maps/package-lock.json ]; then \
	  command -v npm >/dev/null || scripts/apt-install.sh nodejs npm; \
	  npm ci --prefix maps --no-audit --no-fund --loglevel=error && touch maps/node_modules/.installed; fi
	@npm run --prefix maps --silent build

.db-url: scripts/provision-db.sh
	scripts/provision-db.sh geogrid | tail -1 > $@

.db-url.test: scripts/provision-db.sh
	scripts/provision-db.sh geogrid_test | tail -1 > $@

db: .db-url
db-test: .db-url.test

demo: $(STAMP) maps-assets
	@scripts/provision-db.sh geogrid | tail -1 > .db-url
	GEOGRID_DATABASE_URL=$$(cat .db-url) $(BIN)/geogrid demo
	@# ends by serving the demo city (map + API); `make demo SERVE=0` stops after the analyses
	@if [ "$(SERVE)" != "0" ]; then GEOGRID_DATABASE_URL=$$(cat .db-url) GEOGRID_API_KEYS=$(DEMO_KEYS) \
	  GEOGRID_ANONYMOUS_ROLE=viewer $(BIN)/geogrid serve --host 127.0.0.1 --port $(PORT); fi

test: $(STAMP) sysdeps maps-assets
	@scripts/provision-db.sh geogrid_test | tail -1 > .db-url.test
	@scripts/provision-db.sh geogrid_apitest | tail -1 > .db-url.apitest
	GEOGRID_DATABASE_URL=$$(cat .db-url.test) GEOGRID_API_DATABASE_URL=$$(cat .db-url.apitest) \
	  GEOGRID_REQUIRE_DB=1 $(BIN)/pytest -q

bench: $(STAMP) maps-assets
	@scripts/apt-install.sh wrk  # the lookup benchmark's load generator
	@scripts/provision-db.sh geogrid_bench | tail -1 > .db-url.bench
	@# the ingest benchmark truncates incidents: its own database, so the others keep the demo city
	@scripts/provision-db.sh geogrid_bench_ingest | tail -1 > .db-url.bench-ingest
	@mkdir -p bench/results
	@for b in bench/*.py; do echo "== $$b"; url=$$(cat .db-url.bench); \
	  if [ "$$b" = bench/ingest.py ]; then url=$$(cat .db-url.bench-ingest); fi; \
	  GEOGRID_DATABASE_URL=$$url $(BIN)/python $$b || exit 1; done

# provisioning on a fresh Debian (debootstrap + chroot, needs root; 2-4 min, so not part of `make test`)
check-fresh: $(STAMP)
	@if [ "$$(id -u)" -eq 0 ]; then scripts/check-fresh-machine.sh; else sudo scripts/check-fresh-machine.sh; fi

clean-venv:
	rm -rf $(VENV)
