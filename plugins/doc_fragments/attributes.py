# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by every module of the collection."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""

    # Modules that only read state.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: This action does not modify state and runs the same in check mode.
    support: full
  diff_mode:
    description: This action does not modify state, so it returns no diff.
    support: N/A
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""

    # Modules that change an object on the host hold its lock from the first read to the last change.
    LOCK = r"""
options:
  lock_timeout:
    description:
      - How long to wait for another run that is changing the same object on the host (seconds or a time
        span). Changes to one object are serialised; when the wait runs out the task fails and names the
        other run (its PID and module). Check mode waits for a real run but never blocks another check run.
    type: raw
    default: 5min
"""
