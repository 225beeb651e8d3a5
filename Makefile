# The two commands of the README:
#   make repro   environment, demo inputs and the slow stages' results, the rest of the pipeline
#   make test    environment, test suite
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
SSHD := /usr/sbin/sshd
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# stages run as `python -m stages.<name>` under dvc: the venv's python must come first
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: env repro repro-all test test-fast data report

env: $(STAMP)

$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# the demo inputs and the slow stages' results the bundled remote holds (demo-remote/); it holds
# only those, so --allow-missing: whatever is left out, `dvc repro` recomputes (docs/sharing.md: A fresh clone)
data: $(STAMP)
	dvc pull --allow-missing

repro: data
	dvc repro
	@echo
	@echo "metrics: metrics/*.json (dvc metrics show, dvc metrics diff <rev>)"
	@echo "report:  report/report.md (figures in report/figures/)"

# every stage recomputed from the inputs, whatever is cached or pulled (about 55 min on 2 cores)
repro-all: data
	dvc repro --force

# two workers, each test file on one of them, so its module fixtures are built once (spreading
# a file's tests over both rebuilt them: 22 min against 19 on 2 cores); the suite's dvc repro runs
# spend much of their time starting Python processes, which one worker cannot overlap
test: $(STAMP) $(SSHD)
	python -m pytest -q -n 2 --dist loadfile tests

# the SSH remote's test starts its own OpenSSH server on 127.0.0.1 (tests/test_ssh_remote.py);
# the unit tier needs none
$(SSHD):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server \
	  || { $(SUDO) apt-get update -q && \
	       $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server; }

# the unit tier: no model trained, no stage run (a few minutes at most)
test-fast: $(STAMP)
	python -m pytest -q -m "not slow" tests

# `make report BASE=<rev>`: the pipeline's report brought up to date, then report/pr.md for a pull
# request: the verdict first (headline figures changed beyond noise, and the parameter or code
# change behind each), then every metric and parameter change folded. Prints the verdict; fails
# when a headline figure got worse beyond noise, so CI can gate on it.
BASE ?= main
report: $(STAMP)
	dvc repro report
	python -m tools.verdict --base $(BASE) --report report/report.md --out report/pr.md
