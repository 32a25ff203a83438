"""Counts every denied attempt the access suite proves, per host, and prints the tally."""

from __future__ import annotations

import collections

import pytest

DENIED = collections.Counter()


@pytest.fixture
def denied(host):
    name = host.backend.get_hostname()

    def _count(what):
        DENIED[name] += 1
        return what

    return _count


def pytest_terminal_summary(terminalreporter):
    if not DENIED:
        return
    terminalreporter.section("access: denied attempts proven")
    for name, count in sorted(DENIED.items()):
        terminalreporter.write_line(f"FIGURE: denied attempts proven on {name}: {count}")
    terminalreporter.write_line(f"FIGURE: denied attempts proven in total: {sum(DENIED.values())}")
