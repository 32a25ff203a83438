# Copyright: (c) 2026, supervised.background maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The options of a service the collection writes (module_utils/service_spec.py), documented once."""

    DOCUMENTATION = r"""
options:
  description:
    description:
      - C(Description=) of the unit. Defaults to C(NAME worker %i) (C(NAME periodic job) for a timer's service).
      - One line; C(%i)/C(%I) are the only specifiers kept, every other C(%) is written as C(%%).
    type: str
  exec_start:
    description:
      - Command line as a list; the first element is an absolute path, the others are arguments written
        literally. Required with O(state=present).
      - "Quoting rule: C($) is written as C($$) (no variable expansion); an argument holding a space, a quote,
        a backslash or a semicolon, or an empty one, is written between double quotes with C(\\\\) and C(\\\")
        escaped; C(%i) (instance name) and C(%I) (unescaped instance name) are the only specifiers systemd
        expands, every other C(%) is written as C(%%), so a literal C(%i) cannot be passed."
      - The executable must exist when the unit is written (C(systemd-analyze verify) checks it; in check mode
        a missing one is only a warning, an earlier task may install it).
    type: list
    elements: str
  user:
    description: C(User=) the service runs as. A letter or C(_) first, then letters, digits, C(_), C(.), C(-); or a numeric uid.
    type: str
  group:
    description: C(Group=) the service runs as.
    type: str
  working_directory:
    description: Absolute C(WorkingDirectory=).
    type: str
  environment_files:
    description:
      - Absolute paths written as C(EnvironmentFile=) lines, in the given order (later files override earlier
        ones). A leading C(-) marks a file as optional, as in systemd.
    type: list
    elements: str
    default: []
  environment:
    description:
      - Non-secret variables written as C(Environment=) lines, keys sorted.
      - The rules of M(supervised.background.env_file) apply (keys systemd sets itself are refused, as are
        values systemd cannot carry and variables the kernel could not pass).
      - NOT for secrets, unit files and C(systemctl show) are readable by every local user.
    type: dict
    default: {}
  credentials:
    description:
      - systemd credentials, C(ID) to the absolute path of a root-only file (C(LoadCredential=ID:PATH),
        systemd 247 and later). The service reads them from C($CREDENTIALS_DIRECTORY/ID); they are not in its
        environment, not inherited by its children, and not readable by other processes of its user.
      - Write the files with M(supervised.background.credential).
    type: dict
    default: {}
  encrypted_credentials:
    description:
      - Like O(credentials), for files encrypted with C(systemd-creds encrypt) (C(LoadCredentialEncrypted=),
        systemd 250 and later; the module refuses them on older systemd through C(systemd-analyze verify)).
    type: dict
    default: {}
  kill_signal:
    description: C(KillSignal=) sent to the main process on stop, for example V(SIGTERM) or V(SIGINT).
    type: str
    default: SIGTERM
  kill_mode:
    description:
      - C(KillMode=). V(mixed) sends O(kill_signal) to the main process only, so the children it starts while
        draining keep running until it exits; whatever is left at the end is killed with C(SIGKILL), so no
        process outlives the unit. V(control-group) signals every process at once and can cut a graceful drain
        short.
      - V(process) is not offered, it leaves the service's other processes running after a stop.
    type: str
    choices: [control-group, mixed]
    default: mixed
  timeout_stop_sec:
    description: C(TimeoutStopSec=); how long a stop may take before C(SIGKILL). Seconds or a time span, V(infinity) allowed.
    type: raw
    default: 30s
  runtime_max_sec:
    description: C(RuntimeMaxSec=); a run that takes longer is stopped (result V(timeout)). Seconds or a time span.
    type: raw
  hardening:
    description:
      - V(strict) applies the full sandbox (C(ProtectSystem=strict), C(ProtectHome=yes), C(PrivateTmp),
        C(PrivateDevices), C(NoNewPrivileges), kernel, clock, hostname and cgroup protection, namespace,
        realtime and SUID restrictions, C(MemoryDenyWriteExecute), C(RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6),
        C(SystemCallFilter=@system-service), no capabilities, C(ProtectProc=invisible), C(ProcSubset=pid),
        C(UMask=0077)).
      - V(baseline) is a smaller set that suits most daemons unchanged; V(none) adds nothing.
      - A directive of the set can be changed through O(settings), e.g. C(MemoryDenyWriteExecute=no) for a JIT
        runtime; every such change is reported in RV(hardening_overrides) with a warning.
    type: str
    choices: [strict, baseline, none]
    default: strict
  read_write_paths:
    description: Absolute paths the service may write despite C(ProtectSystem=strict).
    type: list
    elements: str
    default: []
  state_directory:
    description:
      - C(StateDirectory=), relative to C(/var/lib), for example V(queue-worker) or V(queue-worker/%i).
      - >-
        For this option, O(runtime_directory) and O(logs_directory): systemd hands the service's user the whole
        directory, so its first part must be the unit's name or start with it and C(-), C(.) or C(_) (V(dpkg) would
        give the worker C(/var/lib/dpkg), whose scripts root runs).
    type: str
  runtime_directory:
    description:
      - C(RuntimeDirectory=), relative to C(/run). systemd removes it when an instance stops, so give each instance
        its own, e.g. V(queue-worker/%i).
    type: str
  logs_directory:
    description: C(LogsDirectory=), relative to C(/var/log).
    type: str
  memory_max:
    description: C(MemoryMax=), e.g. V(512M), V(2G), V(50%) or V(infinity). Zero and more than V(100%) are refused.
    type: str
  cpu_quota:
    description: C(CPUQuota=), e.g. V(50%) or V(200%).
    type: str
  tasks_max:
    description: C(TasksMax=), a count, a percentage or V(infinity). V(0%) is refused.
    type: str
  nice:
    description: C(Nice=), from -20 to 19. A boolean is refused.
    type: int
  settings:
    description:
      - Other C([Service]) directives, name to a value (or a list of values, one line each, for the directives
        that take several lines). Only directives of the collection's allowlist are accepted, each with a typed
        value (times, sizes, limits, signals, exit statuses, the sandbox's booleans and lists, log settings,
        C(StandardOutput=) and C(StandardError=) only to V(journal), V(null), V(inherit) or V(kmsg)...); anything
        else is refused, naming the setting.
      - Directives owned by an option above are refused with the option to use instead.
      - Refused because they run commands as written (an C(+) prefix runs them as root outside the sandbox),
        run parts of the unit as root, replace the service's user, hand it files PID 1 opens as root, or bind
        host paths into its sandbox; every C(Exec*) directive, C(User), C(Group), C(DynamicUser), C(PAMName),
        C(PermissionsStartOnly), C(RootDirectory), C(BindPaths), C(BindReadOnlyPaths), C(ReadWriteDirectories)
        (use O(read_write_paths)), C(StandardOutput=file:/append:/truncate:), C(Delegate), C(DeviceAllow),
        C(PassEnvironment), C(SetCredential) and C(LoadCredential) (use O(credentials)).
      - A setting that replaces a directive of the O(hardening) set with another value, or that grants
        privileges (C(AmbientCapabilities), C(CapabilityBoundingSet), C(SupplementaryGroups), C(NoNewPrivileges=no)),
        is allowed but never silent; it is listed in RV(hardening_overrides) and a warning names it whenever the
        unit file changes.
    type: dict
    default: {}
  after:
    description: C(After=) units (full names such as V(postgresql.service) or V(network-online.target)).
    type: list
    elements: str
    default: []
  before:
    description: C(Before=) units.
    type: list
    elements: str
    default: []
  wants:
    description: C(Wants=) units, started along with the service.
    type: list
    elements: str
    default: []
  requires:
    description:
      - C(Requires=) units. When one of them is stopped the service is stopped too; add it to O(after) as well so
        the service starts after it.
    type: list
    elements: str
    default: []
  binds_to:
    description: C(BindsTo=) units (like O(requires), and the service also stops when the unit merely goes away).
    type: list
    elements: str
    default: []
  part_of:
    description: C(PartOf=) units (a stop or restart of the unit is passed on to the service).
    type: list
    elements: str
    default: []
  on_failure:
    description:
      - C(OnFailure=) units, started when the service enters the failed state (for a worker, when it gives up
        after its start limit). May be a template instance with a specifier, such as V(alert@%n.service).
      - >-
        On systemd 254 and later (Debian 13) a service also passes through the failed state on each crash that
        C(Restart=) recovers from, so these units run after every crash too, not only when the worker gives up
        (measured on systemd 252, they run only when it gives up).
    type: list
    elements: str
    default: []
  wait_for_network:
    description: Add C(network-online.target) to O(wants) and O(after), for a service that needs the network up.
    type: bool
    default: false
"""

    WORKER = r"""
options:
  type:
    description:
      - Service C(Type=). V(exec) makes a start fail when the executable cannot be run; V(notify) waits for the
        worker's C(sd_notify(READY=1)) (with C(NotifyAccess=main)).
    type: str
    choices: [simple, exec, notify]
    default: exec
  exec_reload:
    description: Optional C(ExecReload=) command line, same rules as O(exec_start).
    type: list
    elements: str
  restart:
    description: C(Restart=) policy.
    type: str
    choices: ['no', always, on-failure, on-abnormal, on-abort, on-watchdog, on-success]
    default: always
  restart_sec:
    description: C(RestartSec=); seconds or a time span such as V(500ms) or V(2s).
    type: raw
    default: 2s
  start_limit_burst:
    description: C(StartLimitBurst=) in C([Unit]); starts allowed within O(start_limit_interval_sec).
    type: int
    default: 5
  start_limit_interval_sec:
    description: C(StartLimitIntervalSec=) in C([Unit]); V(0) disables the start rate limit.
    type: raw
    default: 60s
  watchdog_sec:
    description:
      - C(WatchdogSec=); needs O(type=notify). The worker must send C(WATCHDOG=1) more often than this, or systemd
        kills and restarts it (result V(watchdog)), which catches a worker that hangs with its process alive.
    type: raw
  wanted_by:
    description: C(WantedBy=) target of C([Install]), used when an instance is enabled.
    type: str
    default: multi-user.target
"""
