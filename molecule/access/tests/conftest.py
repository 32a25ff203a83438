"""Counts what the access suite proves, per host and sudo implementation, and prints the tally.

* ``denied(what)``: sudo refused the attempt (or the module refused the rule).
* ``defeated(what)``: sudo ran the regrouped call, and the program saw cwd ``/`` and opened
  nothing the runner controls (C sudo joins arguments, so it cannot refuse those).
"""

from __future__ import annotations

import collections

import pytest

DENIED = collections.Counter()
DEFEATED = collections.Counter()
IMPLEMENTATION = {}


def _label(host):
    name = host.backend.get_hostname()
    if name not in IMPLEMENTATION:
        out = host.run("sudo --version 2>&1 | head -n1")  # sudo-rs prints it on stderr
        IMPLEMENTATION[name] = out.stdout.strip() or "unknown sudo"
    return f"{name} ({IMPLEMENTATION[name]})"


@pytest.fixture
def denied(host):
    label = _label(host)

    def _count(what):
        DENIED[label] += 1
        return what

    return _count


@pytest.fixture
def defeated(host):
    label = _label(host)

    def _count(what):
        DEFEATED[label] += 1
        return what

    return _count


def pytest_terminal_summary(terminalreporter):
    if not DENIED and not DEFEATED:
        return
    terminalreporter.section("access: attempts proven")
    for label in sorted(set(DENIED) | set(DEFEATED)):
        terminalreporter.write_line(f"FIGURE: denied attempts proven on {label}: {DENIED[label]}")
        terminalreporter.write_line(f"FIGURE: regrouped calls run harmlessly (cwd /, nothing of the runner "
                                    f"opened) on {label}: {DEFEATED[label]}")
    terminalreporter.write_line(f"FIGURE: denied attempts proven in total: {sum(DENIED.values())}")
