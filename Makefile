# `make setup` is idempotent: it installs only what is missing and is quick when nothing is.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# FAUCET (the `faucet` topology) runs on os-ken, which cannot share a venv with ryu 4.34.
FAUCET_VENV := .venv-faucet
DEBS := openvswitch-switch iproute2 tcpdump iputils-ping curl socat dnsmasq-base iptables isc-dhcp-client \
	netcat-openbsd iputils-arping nmap \
	ovn-central ovn-host prometheus chromium chromium-driver
# ryu 4.34's setup.py calls a setuptools API that was removed in 68; the constraint reaches
# pip's isolated build environments too.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test unit e2e bench clean

setup: .stamp-debs $(VENV)/.stamp $(FAUCET_VENV)/.stamp

# The lab runs OVN's daemons privately: when setup installs OVN, the system daemons its
# packages enable (ovn-central, ovn-host) are stopped and disabled.
.stamp-debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi; \
	if [[ "$$missing" == *ovn-* ]] && [ -d /run/systemd/system ]; then \
	  systemctl disable --now ovn-central ovn-host >/dev/null 2>&1 || true; \
	fi
	@touch $@

$(VENV)/.stamp: setup.cfg constraints.txt ryu_apps/eventlet_compat.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "setuptools<68" wheel pbr
	$(PY) -m pip install -q --no-build-isolation ryu==4.34
	$(PY) -m pip install -q -e '.[test]'
	# ryu-manager imports ryu.app.wsgi before any app: the shim must load at interpreter start.
	echo "import ryu_apps.eventlet_compat" > $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/ryu_probe_compat.pth
	touch $@

$(FAUCET_VENV)/.stamp: requirements-faucet.txt
	test -x $(FAUCET_VENV)/bin/python || $(PYTHON) -m venv $(FAUCET_VENV)
	$(FAUCET_VENV)/bin/python -m pip install -q -r requirements-faucet.txt
	touch $@

test: setup
	$(PY) -m pytest -q tests/unit tests/e2e

unit: setup
	$(PY) -m pytest -q tests/unit

e2e: setup
	$(PY) -m pytest -q tests/e2e

demo: setup
	$(PY) -m topologies.demo

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(FAUCET_VENV) .stamp-debs *.egg-info
