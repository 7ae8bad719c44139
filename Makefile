# Install wyng-util-qubes the way Qubes packages do: the dom0 spec runs
# `make install-dom0 DESTDIR=%{buildroot}`, the management-qube spec
# `make install-vm DESTDIR=%{buildroot}`. `make install` is install-dom0.
#
# Nothing here reaches the network: the package tree is copied, not built
# with pip, so an offline rpmbuild (qubes-builder cages) works.

PYTHON ?= /usr/bin/python3
PREFIX ?= /usr
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
# Where $(PYTHON) keeps pure-Python packages under $(PREFIX): the same path as
# Fedora's %{python3_sitelib}. The specs pass theirs explicitly.
PYTHON_SITELIB ?= $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("purelib", "posix_prefix", {"base": "$(PREFIX)", "platbase": "$(PREFIX)"}))')
QUBES_RPC_DIR ?= $(SYSCONFDIR)/qubes-rpc
POLICY_DIR ?= $(SYSCONFDIR)/qubes/policy.d
PROFILE_DIR ?= $(SYSCONFDIR)/wyng-util-qubes/profiles
SALT_DIR ?= /srv/salt
UNIT_DIR ?= $(PREFIX)/lib/systemd/system
MAN_DIR ?= $(PREFIX)/share/man
BASH_COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
LOGROTATE_DIR ?= $(SYSCONFDIR)/logrotate.d
# The Python that runs the checks (`make test`, what .ci/run runs).
TEST_PYTHON ?= python3

# The package's files: code and the data it ships, never caches.
PACKAGE_FILES := $(shell find wyngq -type f \( -name '*.py' -o -name '*.toml' -o -name '*.json' -o -name 'py.typed' \) \
	-not -path '*/__pycache__/*' | LC_ALL=C sort)

VERSION := $(shell cat version)
# Made from the argparse parsers that --help prints (wyngq/cli/manual.py).
MAN_PAGE := build/wyng-util-qubes.1
COMPLETION := build/wyng-util-qubes.bash

.PHONY: all man completion schema install install-dom0 install-vm install-package test rpm clean

all: man completion

man: $(MAN_PAGE)
completion: $(COMPLETION)

$(MAN_PAGE) $(COMPLETION): $(PACKAGE_FILES) version
	PYTHONPATH=. $(PYTHON) -m wyngq.cli.manual man $(MAN_PAGE)
	PYTHONPATH=. $(PYTHON) -m wyngq.cli.manual completion $(COMPLETION)

# The JSON Schema of every JSON line, generated from the contract's dataclasses
# (docs/json.md); the package ships it and a test checks it is up to date.
schema:
	PYTHONPATH=. $(PYTHON) -m wyngq.contract.schema wyngq/data/schema

clean:
	rm -rf build

install: install-dom0

# The Python package and the command: what dom0 and a management qube both get.
# The command runs `python3 -P`, so a directory it is started from is never on sys.path.
install-package: man completion
	@test -n "$(PYTHON_SITELIB)" || { echo "cannot find the site-packages of $(PYTHON)" >&2; exit 1; }
	@for file in $(PACKAGE_FILES); do \
		install -D -m 0644 "$$file" "$(DESTDIR)$(PYTHON_SITELIB)/$$file" || exit 1; \
	done
	install -d -m 0755 $(DESTDIR)$(BINDIR)
	printf '#!/bin/sh\n# Runs the installed wyngq package (-P: nothing from the working directory).\nexec %s -P -m wyngq "$$@"\n' \
		'$(PYTHON)' > $(DESTDIR)$(BINDIR)/wyng-util-qubes
	chmod 0755 $(DESTDIR)$(BINDIR)/wyng-util-qubes
	install -D -m 0644 $(MAN_PAGE) $(DESTDIR)$(MAN_DIR)/man1/wyng-util-qubes.1
	install -D -m 0644 $(COMPLETION) $(DESTDIR)$(BASH_COMPLETION_DIR)/wyng-util-qubes

# dom0: the command, the qrexec service and its policy, an example profile, Salt,
# the scheduled-backup units (installed, never enabled) and the audit log's rotation.
install-dom0: install-package
	install -D -m 0755 qubes-rpc/qubes.WyngBackup $(DESTDIR)$(QUBES_RPC_DIR)/qubes.WyngBackup
	install -D -m 0664 policy/90-default-wyng-util-qubes.policy \
		$(DESTDIR)$(POLICY_DIR)/90-default-wyng-util-qubes.policy
	install -D -m 0664 policy/30-user-wyng-util-qubes.policy \
		$(DESTDIR)$(POLICY_DIR)/30-user-wyng-util-qubes.policy
	install -D -m 0644 wyngq/data/wyng-util-qubes.example.toml $(DESTDIR)$(PROFILE_DIR)/example.toml.sample
	install -D -m 0644 salt/_modules/wyngq.py $(DESTDIR)$(SALT_DIR)/_modules/wyngq.py
	install -D -m 0644 salt/_states/wyngq.py $(DESTDIR)$(SALT_DIR)/_states/wyngq.py
	install -D -m 0644 wyngq/data/systemd/wyng-util-qubes-backup@.service \
		$(DESTDIR)$(UNIT_DIR)/wyng-util-qubes-backup@.service
	install -D -m 0644 wyngq/data/systemd/wyng-util-qubes-backup@.timer \
		$(DESTDIR)$(UNIT_DIR)/wyng-util-qubes-backup@.timer
	install -D -m 0644 wyngq/data/logrotate/wyng-util-qubes $(DESTDIR)$(LOGROTATE_DIR)/wyng-util-qubes

# A management qube: the same command, which forwards requests to dom0 over qrexec.
install-vm: install-package

# Both RPMs from the committed tree (HEAD), as qubes-builder would make them, in
# build/rpmbuild/RPMS/noarch/. Needs git and rpmbuild (Fedora: rpm-build).
RPM_TOP := $(CURDIR)/build/rpmbuild
rpm:
	rm -rf $(RPM_TOP) && mkdir -p $(RPM_TOP)/SOURCES $(RPM_TOP)/SPECS
	git archive --format=tar.gz --prefix=wyng-util-qubes-$(VERSION)/ \
		-o $(RPM_TOP)/SOURCES/wyng-util-qubes-$(VERSION).tar.gz HEAD
	printf '* %s wyng-util-qubes local build <root@localhost> - %s-1\n- Built from %s with make rpm\n' \
		"$$(LC_ALL=C date -u '+%a %b %d %Y')" '$(VERSION)' "$$(git rev-parse --short HEAD)" > $(RPM_TOP)/changelog
	for spec in wyng-util-qubes wyng-util-qubes-vm; do \
		sed -e 's/@VERSION@/$(VERSION)/' -e '/@CHANGELOG@/{r $(RPM_TOP)/changelog' -e 'd}' \
			rpm_spec/$$spec.spec.in > $(RPM_TOP)/SPECS/$$spec.spec || exit 1; \
		rpmbuild -ba $(RPMBUILD_FLAGS) --define "_topdir $(RPM_TOP)" $(RPM_TOP)/SPECS/$$spec.spec || exit 1; \
	done

# The README's test command: lint, strict types, then every test tier that can run here.
test:
	$(TEST_PYTHON) -m ruff check .
	$(TEST_PYTHON) -m mypy
	$(TEST_PYTHON) -m pytest -q
