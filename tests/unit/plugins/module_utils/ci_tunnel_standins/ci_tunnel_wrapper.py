# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Runs ci_tunnel.main() the way the installed /usr/local/bin/ci-tunnel does, with its constants
pointed at a test rig: the test writes RIG/bin/ci-tunnel, a script calling ``main(MODULE, RIG, argv)``.

RIG/patch.json maps constant names to values; the key "_pidfd" forces the fallback without pidfd:
"missing" deletes os.pidfd_open (like Python 3.8), "enosys" makes it fail with ENOSYS (Linux < 5.3).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import sys


def _no_pidfd(pid, flags=0):
    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


def load(module_path, base):
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location("ci_tunnel_under_test", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(os.path.join(base, "patch.json"), encoding="utf-8") as handle:
        patch = json.load(handle)
    pidfd = patch.pop("_pidfd", None)
    for name, value in patch.items():
        if not hasattr(module, name):
            raise SystemExit(f"ci_tunnel has no constant {name}")
        setattr(module, name, value)
    if pidfd == "missing" and hasattr(os, "pidfd_open"):
        del os.pidfd_open
    elif pidfd == "enosys":
        os.pidfd_open = _no_pidfd
    return module


def main(module_path, base, argv):
    return load(module_path, base).main(argv)
