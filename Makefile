# supervised.background: every command a developer or CI needs, with its own set-up.
#   make test            everything: sanity, lint, unit tests, every Molecule scenario, galaxy check
#   make demo            a local systemd container running the example worker
#   make unit | sanity | lint | galaxy | scenario S=default | molecule | controllers | bench   narrower targets
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(CURDIR)
BUILD := $(ROOT)/.build
VENV := $(BUILD)/venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Keep every tool's state (ansible, molecule, galaxy, ansible-test caches) inside .build.
export HOME := $(BUILD)/home
export ANSIBLE_HOME := $(BUILD)/home/.ansible
export ANSIBLE_LOCAL_TEMP := $(BUILD)/home/.ansible/tmp
export MOLECULE_GLOB := molecule/*/molecule.yml
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/collections
export ANSIBLE_FORCE_COLOR ?= $(if $(CI),0,1)
export PY_COLORS ?= $(if $(CI),0,1)
SCENARIOS := $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
S ?= default
DISTRO ?= $(or $(MOLECULE_DISTRO),bookworm)
# Every scenario runs on Debian 11, 12 and 13 (systemd 247, 252, 257), each release in its own
# Molecule process, MOLECULE_JOBS at once. A scenario whose molecule.yml lists its own platforms
# (fleet: mixed releases in one run) runs once. On Debian 13, access also runs with sudo-rs.
RELEASES := bullseye bookworm trixie
MOLECULE_JOBS ?= 3
OWN_PLATFORMS := $(foreach s,$(SCENARIOS),$(if $(shell grep -l '^platforms:' molecule/$(s)/molecule.yml),$(s)))
# default on Debian 13 is left out here because `make controllers` runs that very scenario and release
# with ansible-core 2.21 as the controller (make test runs both targets).
MOLECULE_RUNS ?= $(filter-out default:trixie,$(foreach s,$(filter-out $(OWN_PLATFORMS),$(SCENARIOS)),$(foreach r,$(RELEASES),$(s):$(r)))) \
  $(foreach s,$(OWN_PLATFORMS),$(s):mixed) $(if $(filter access,$(SCENARIOS)),access:trixie:sudo-rs)

.PHONY: help test deps engine images unit sanity lint galaxy molecule controllers scenario demo demo-clean bench clean changelog docs

help:
	@sed -n '1,5p' Makefile

$(VENV)/.stamp: requirements-test.txt
	@mkdir -p $(BUILD)/home
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-test.txt
	@touch $@

deps: $(VENV)/.stamp
	@hack/collection-tree.sh link >/dev/null

engine:
	@hack/ensure-docker.sh

images: engine
	@pids=(); for d in $(RELEASES); do hack/build-image.sh $$d & pids+=($$!); done; \
	  rc=0; for p in "$${pids[@]}"; do wait $$p || rc=1; done; exit $$rc

unit: deps
	PYTHONPATH=$(BUILD)/collections $(PY) -m pytest -q -p no:cacheprovider tests/unit

sanity: deps
	@hack/install-get-pip-standin.sh $(VENV)
	@dest=$$(hack/collection-tree.sh copy) && cd $$dest && \
	  rc=0 && $(BIN)/ansible-test sanity --venv --python 3.11 --color $(if $(CI),no,yes) || rc=$$?; \
	  rm -rf "$${dest%/ansible_collections/*}"; exit $$rc

lint: deps
	$(BIN)/ansible-lint --profile production
	hack/docsite.sh check
	$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

docs: deps
	hack/docsite.sh write

galaxy: deps
	@rm -rf $(BUILD)/dist && mkdir -p $(BUILD)/dist
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist . >/dev/null
	@cd $(BUILD)/dist && printf '[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = True\nOFFLINE_ANSIBLE_LINT = True\nCHECK_CHANGELOG = True\nLOG_LEVEL_MAIN = INFO\n' > importer.cfg && \
	  GALAXY_IMPORTER_CONFIG=$(BUILD)/dist/importer.cfg $(PY) -m galaxy_importer.main supervised-background-*.tar.gz > importer.log 2>&1; \
	  rc=$$?; cat importer.log | grep -vE '^\s*$$' | tail -n 40; \
	  if [ $$rc -ne 0 ] || grep -qE '^(ERROR|WARNING)' importer.log; then echo "galaxy-importer reported errors or warnings" >&2; exit 1; fi
	@echo "galaxy-importer: accepted"

molecule: deps images
	$(PY) hack/molecule_matrix.py --jobs $(MOLECULE_JOBS) $(MOLECULE_RUNS)

# ansible-core 2.20 and 2.21 (Python >= 3.12) in a Debian 13 container: sanity and unit tests for
# each, then the default scenario with 2.21 as the controller. 2.19 is `sanity` and `unit` here.
controllers: deps images
	hack/controller-matrix.sh
	hack/controller-matrix.sh --molecule

scenario: deps images
	MOLECULE_DISTRO=$(DISTRO) $(BIN)/molecule test -s $(S)

test: deps
	@start=$$(date +%s); steps=$(BUILD)/test-steps.txt; : > $$steps; \
	for step in sanity lint unit galaxy controllers molecule demo-check; do \
	  s=$$(date +%s); \
	  $(MAKE) --no-print-directory $$step || { echo "make test: $$step FAILED"; cat $$steps; exit 1; }; \
	  printf '%-12s %5s s\n' $$step $$(( $$(date +%s) - s )) >> $$steps; \
	done; \
	echo "=== make test: time per step"; cat $$steps; \
	echo "=== time per scenario and release"; cat $(BUILD)/molecule-times.txt; \
	echo "make test: all passed in $$(( $$(date +%s) - start )) s"

demo: deps images
	@hack/demo.sh $(DISTRO)

demo-clean:
	@hack/demo.sh --clean

# The demo's acts with their checks, non-interactive (its own container, removed at the end).
.PHONY: demo-check
demo-check: deps images
	@DEMO_CHECK=1 hack/demo.sh $(DISTRO)

bench: deps images
	PYTHONPATH=$(BUILD)/collections $(PY) bench/run.py

changelog: deps
	cd $(ROOT) && $(BIN)/antsibull-changelog lint

clean:
	-docker rm -f supervised-demo >/dev/null 2>&1
	rm -rf $(BUILD)/dist $(BUILD)/ansible-test tests/output
