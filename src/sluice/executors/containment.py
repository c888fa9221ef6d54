"""What holds every process of a task attempt, so that a kill reaches all of them (ADR 0004, revision 2).

Two layers, both used by the zygote (``sluice.executors.zygote``):

- **A cgroup v2 per task process**, where the host lets us create cgroups (root in a writable cgroup v2
  tree whose kernel has ``cgroup.kill``): the zygote makes ``sluice-<zygote pid>-<token>/`` below its own
  cgroup, and every forked child moves itself into ``p<pid>/`` in it before it runs anything (the cgroups
  of zygotes that died without removing theirs are removed by the next zygote). No process can leave a
  cgroup by itself (``setsid``, double forks and a scrubbed environment change nothing), and
  writing ``1`` to ``cgroup.kill`` SIGKILLs everything in it at once, forks in flight included.
- **Subreapers**, always: the zygote and every task leader are child subreapers
  (``PR_SET_CHILD_SUBREAPER``), so a descendant orphaned while its leader runs becomes the leader's child,
  and once the leader is gone, the zygote's. The processes of a running attempt are then exactly the
  leader's descendants, and any child of the zygote that is neither a task leader nor the spare is left
  over from an attempt that ended: both are found in ``/proc`` and killed until none is left.

One sanctioned exception: a process whose initial environment holds ``SLUICE_DETACHED=<executor token>``
(:func:`detached_marker`) is spared, with its descendants, and moved to the zygote's ``detached/`` cgroup
before a task's cgroup is killed. Sluice's job-cluster servers use it: a task starts one and the run's
other tasks share it; the driver stops it when the run ends, and it dies with the driver. This is not a
security boundary (task code runs as the same user as Sluice); it keeps careless code from outliving its
task.

``SLUICE_CONTAINMENT=subreaper`` turns the cgroup layer off (to test the fallback, or on a host where
cgroups are managed by someone else); the default ``auto`` uses cgroups when the probe succeeds.

Imports only the standard library: the zygote and every task process import this module.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable

#: ``auto`` (cgroup v2 where possible, subreapers always) or ``subreaper`` (no cgroups).
CONTAINMENT_ENV = "SLUICE_CONTAINMENT"
#: ``<executor token>``: the process may outlive the task that started it (a job-cluster server).
DETACHED_ENV = "SLUICE_DETACHED"


def detached_marker(process_tag: str | None) -> dict[str, str]:
    """The environment entry that lets a process started by a task outlive it, given the task's
    ``SLUICE_PROCESS_TAG`` (``<token>.<attempt id>``); empty outside a task."""
    token = (process_tag or "").partition(".")[0]
    return {DETACHED_ENV: token} if token else {}


def is_detached(pid: int, token: str) -> bool:
    """Whether ``pid``'s initial environment holds ``SLUICE_DETACHED=<token>``."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = b"\0" + f.read() + b"\0"
    except OSError:
        return False
    return b"\0" + DETACHED_ENV.encode() + b"=" + token.encode() + b"\0" in data


_KILL_PASSES = 50


# -- the process table -----------------------------------------------------------------------------------


def parents(*, above_pid: int = 0) -> dict[int, int]:
    """``{pid: parent pid}`` of every live (not zombie) process with a pid above ``above_pid``."""
    found: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) <= above_pid:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and fields[0] not in (b"Z", b"X"):
            found[int(name)] = int(fields[1])
    return found


def descendants(
    roots: Iterable[int], table: dict[int, int], *, spare: Callable[[int], bool] | None = None
) -> list[int]:
    """Every process below ``roots`` in ``table`` (from :func:`parents`), roots excluded; a process for
    which ``spare`` is true is left out with everything below it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if spare is not None and spare(child):
                continue
            found.append(child)
            todo.append(child)
    return found


def signal_tree(
    root: int, sig: int, *, include_root: bool = True, spare: Callable[[int], bool] | None = None
) -> int:
    """Send ``sig`` to ``root``'s live descendants (and ``root``); returns how many were signalled."""
    pids = descendants([root], parents(above_pid=0), spare=spare)
    if include_root:
        pids.append(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return len(pids)


def kill_strays(
    reaper: int, known: Iterable[int], *, above_pid: int = 0, spare: Callable[[int], bool] | None = None
) -> int:
    """SIGKILL every child of ``reaper`` not in ``known``, and their descendants, until none is left.

    ``reaper`` is a child subreaper: what is killed here hands its own children to it, so each pass looks
    again. Pids are allocated in increasing order, so with ``above_pid`` the first pass reads only newer
    processes; later passes read everything. Returns how many processes were killed.
    """
    keep = set(known)
    spared: set[int] = set()
    killed = 0
    floor = above_pid
    for _ in range(_KILL_PASSES):
        table = parents(above_pid=floor)
        strays = [pid for pid, ppid in table.items() if ppid == reaper and pid not in keep | spared]
        if spare is not None:
            spared.update(pid for pid in strays if spare(pid))
            strays = [pid for pid in strays if pid not in spared]
        if not strays:
            return killed
        if floor:
            table = parents(above_pid=0)  # their descendants may have older pids after a wrap
            floor = 0
        for pid in [*strays, *descendants(strays, table, spare=spare)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


# -- cgroup v2 --------------------------------------------------------------------------------------------


def _own_cgroup_dir() -> str | None:
    """The directory of this process's cgroup v2 in a mounted cgroup2 file system, or None."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            mounts = f.read().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        return None
    for mount in mounts:
        left, _, right = mount.partition(" - ")
        if not right.startswith("cgroup2 "):
            continue
        fields = left.split()
        root, point = fields[3], fields[4]
        if own == root or own.startswith(root.rstrip("/") + "/"):
            rel = own[len(root.rstrip("/")) :].lstrip("/")
            return os.path.join(point, rel) if rel else point
    return None


class Cgroups:
    """The cgroup v2 directory of one zygote (``sluice-<pid>-<token>``): one sub-cgroup per task process."""

    def __init__(self, base: str) -> None:
        self.base = base

    @classmethod
    def probe(cls, token: str) -> Cgroups | None:
        """Create ``sluice-<pid>-<token>`` below the caller's cgroup, if the host allows it and has
        ``cgroup.kill`` (removing first those of zygotes that died without removing theirs)."""
        if os.environ.get(CONTAINMENT_ENV, "auto") == "subreaper":
            return None
        parent = _own_cgroup_dir()
        if parent is None:
            return None
        _sweep_stale(parent)
        base = os.path.join(parent, f"sluice-{os.getpid()}-{token}")
        try:
            os.mkdir(base)
        except OSError:
            return None
        if not os.path.exists(os.path.join(base, "cgroup.kill")):  # kernel < 5.14
            with contextlib.suppress(OSError):
                os.rmdir(base)
            return None
        return cls(base)

    def path(self, pid: int) -> str:
        return os.path.join(self.base, f"p{pid}")

    def enter(self) -> bool:
        """In a freshly forked child: move into a cgroup of its own (``p<pid>``). False if that failed."""
        path = self.path(os.getpid())
        try:
            os.mkdir(path)
            with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as f:
                f.write("0")
        except OSError:
            return False
        return True

    def pids(self, pid: int) -> list[int]:
        """Every process in task process ``pid``'s cgroup."""
        try:
            with open(os.path.join(self.path(pid), "cgroup.procs"), encoding="ascii") as f:
                return [int(line) for line in f.read().split()]
        except OSError:
            return []

    def signal(self, pid: int, sig: int, *, spare: Callable[[int], bool] | None = None) -> None:
        """Send ``sig`` to every process in task process ``pid``'s cgroup (but those ``spare`` names)."""
        for member in self.pids(pid):
            if spare is not None and spare(member):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, sig)

    def kill(self, pid: int, *, spare: Callable[[int], bool] | None = None) -> None:
        """SIGKILL everything in task process ``pid``'s cgroup (atomically, forks in flight included);
        the processes ``spare`` names are first moved to ``detached/``. An empty cgroup (the common case: the
        task left nothing behind) is not written to: nothing can enter it but through ``cgroup.procs``, and
        ``cgroup.kill`` costs more than the read (~0.12 ms)."""
        members = self.pids(pid)
        if not members:
            return
        if spare is not None:
            for member in members:
                if spare(member):
                    self._detach(member)
        kill_cgroup(self.path(pid))

    def _detach(self, pid: int) -> None:
        path = os.path.join(self.base, "detached")
        with contextlib.suppress(OSError):
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "cgroup.procs"), "w", encoding="ascii") as f:
                f.write(str(pid))

    def remove(self, pid: int) -> bool:
        """Remove ``pid``'s cgroup once empty (killing what is left); True when it is gone."""
        return remove_cgroup(self.path(pid))

    def close(self) -> bool:
        """Kill everything under this zygote's cgroup and remove it; True when it is gone."""
        return remove_cgroup(self.base)


def _sweep_stale(parent: str) -> None:
    """Remove the cgroups of zygotes that died without removing theirs (SIGKILLed), killing what is left.

    A zygote's cgroup is ``sluice-<zygote pid>-<token>``: one whose zygote is gone holds only processes that
    should have died with it.
    """
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for name in entries:
        owner = name.split("-")[1] if name.startswith("sluice-") and name.count("-") >= 2 else ""
        if owner.isdigit() and not _alive(int(owner)):
            remove_cgroup(os.path.join(parent, name))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def kill_cgroup(path: str) -> None:
    with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.kill"), "w", encoding="ascii") as f:
        f.write("1")


def remove_cgroup(path: str) -> bool:
    """SIGKILL everything in cgroup ``path`` and below, and remove the cgroups once empty.

    True when ``path`` no longer exists; False while a killed process has not exited yet (try again later).
    """
    try:
        os.rmdir(path)  # an empty cgroup without children goes at once, without a kill
    except FileNotFoundError:
        return True
    except OSError:
        pass
    else:
        return True
    kill_cgroup(path)
    gone = True
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                gone = remove_cgroup(entry.path) and gone
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return gone
