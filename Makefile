# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test install prerequisites lint bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# PostgreSQL, Chromium and jemalloc (shared/freed_memory.py) from Debian's packages (only when missing), Kafka's
# jars from Maven Central (only once), npm packages (the AsyncAPI parser, the console's chart library and
# accessibility checker, and the OIDC issuer the console's sign-in test runs), and compose-go from the Go module
# proxy (the compose file's loader). The Kafka broker and the HL7 validator get class-data archives: their JVMs start
# faster (deploy/kafka/launcher.py, deploy/tools/fhir-validator/class-archive.sh).
prerequisites: $(INSTALLED)
	bash deploy/postgres/install.sh
	$(PY) -m deploy.kafka fetch
	[ deploy/tools/asyncapi/node_modules/.package-lock.json -nt deploy/tools/asyncapi/package-lock.json ] || npm ci --prefix deploy/tools/asyncapi --no-audit --no-fund --silent --ignore-scripts
	[ services/console/assets/node_modules/.package-lock.json -nt services/console/assets/package-lock.json ] || npm ci --prefix services/console/assets --no-audit --no-fund --silent --ignore-scripts
	[ deploy/tools/oidc-issuer/node_modules/.package-lock.json -nt deploy/tools/oidc-issuer/package-lock.json ] || npm ci --prefix deploy/tools/oidc-issuer --no-audit --no-fund --silent --ignore-scripts
	bash deploy/tools/chromium/install.sh
	sh deploy/tools/debian-package.sh libjemalloc2
	[ deploy/tools/compose-check/compose-check -nt deploy/tools/compose-check/main.go ] && [ deploy/tools/compose-check/compose-check -nt deploy/tools/compose-check/go.sum ] || (cd deploy/tools/compose-check && go build -buildvcs=false -o compose-check .)
	[ -f deploy/tools/fhir-validator/target/fhir-validator.jar ] && [ -z "$$(find deploy/tools/fhir-validator/pom.xml deploy/tools/fhir-validator/src -newer deploy/tools/fhir-validator/target/fhir-validator.jar)" ] || mvn -q -B -f deploy/tools/fhir-validator/pom.xml package -DskipTests
	bash deploy/tools/fhir-validator/class-archive.sh

install: prerequisites

run: install
	$(PY) -m deploy.local_stack

# Two workers (pytest-xdist), each with its own broker and PostgreSQL (tests/conftest.py): much of a test's time is
# spent waiting on brokers, servers and browsers. TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
# The suite's scratch files (its SQLite databases, the brokers' logs, the services' var dirs) go on tmpfs when
# /dev/shm is writable: syncing a file there waits for no disk, and no test can tell the difference (a kill -9
# leaves the OS's pages as they are). Deleted after a run that passed; a failed run's stay for a look, until the
# next run clears them. Only with 4 GiB free there (a whole run held at most 470 MB there at once); TEST_TMP=
# (empty) keeps pytest's own place under /tmp. Worked out once (:=): the run and the clean-up name one directory.
ifeq ($(origin TEST_TMP),undefined)
TEST_TMP := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$$(df -Pk /dev/shm | awk 'NR == 2 {print $$4}')" -gt 4194304 ] && echo /dev/shm/kapnet-tests-$$(printf %s "$(CURDIR)" | sha256sum | cut -c1-12))
endif
test: install
	$(PY) -m pytest -p no:cacheprovider -n $(TEST_WORKERS) $(if $(TEST_TMP),--basetemp=$(TEST_TMP)) $(PYTEST_ARGS)
	$(if $(TEST_TMP),rm -rf $(TEST_TMP))

lint: $(INSTALLED)
	$(VENV)/bin/ruff check shared services deploy tests bench
	$(VENV)/bin/ruff format --check shared services deploy tests bench
	$(VENV)/bin/mypy shared services deploy tests bench

# Figures, never assertions: bench/RESULTS.md quotes the JSON these write to bench/results/.
bench: install
	$(PY) -m bench.pipeline --events 20000 --json bench/results/pipeline-sqlite.json
	$(PY) -m bench.pipeline --events 20000 --database postgresql --json bench/results/pipeline-postgresql.json
	$(PY) -m bench.pipeline_split --events 20000 --json bench/results/pipeline-split-sqlite.json
	$(PY) -m bench.pipeline_ceiling --events 20000 --json bench/results/pipeline-ceiling.json
	$(PY) -m bench.pipeline_split --events 20000 --database postgresql --json bench/results/pipeline-split-postgresql.json
	$(PY) -m bench.freshness --seconds 60 --json bench/results/freshness.json
	$(PY) -m bench.api --json bench/results/api.json
	$(PY) -m bench.rebuild --json bench/results/rebuild.json
	$(PY) -m bench.footprint --json bench/results/footprint.json
	$(PY) -m bench.scale_out --json bench/results/scale-out.json
	$(PY) -m bench.measure_reports --json bench/results/measure-reports.json
	$(PY) -m bench.webhook_queue --json bench/results/webhook-queue.json
	$(PY) -m bench.billing_consumer --json bench/results/billing-consumer.json
	$(PY) -m bench.sqlite_writers
	$(PY) -m bench.synthetic_cohort --quick

clean:
	rm -rf var
