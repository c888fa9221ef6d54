"""LocalExecutor with real processes: exit codes, logs, kills, process trees, crashes of the host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.executors import Exited, LaunchSpec, TaskKind
from sluice.executors.local import LaunchError, LocalExecutor
from sluice.executors.zygote import find_tagged


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    ex = LocalExecutor()
    ex.start()
    yield ex
    ex.close(grace=0.2)
    assert find_tagged(ex.token) == {}, "processes left behind after close()"


class Runner:
    """Writes a task script into tmp_path and launches it."""

    def __init__(self, executor: LocalExecutor, tmp_path: Path) -> None:
        self.executor = executor
        self.tmp_path = tmp_path
        self.next_id = 1

    def launch(
        self,
        source: str,
        *,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Path]:
        attempt_id = self.next_id
        self.next_id += 1
        script = self.tmp_path / f"task_{attempt_id}.py"
        script.write_text(textwrap.dedent(source))
        attempt_dir = self.tmp_path / f"attempt_{attempt_id}"
        self.executor.launch(
            LaunchSpec(
                attempt_id=attempt_id,
                kind=TaskKind.PYTHON_FILE,
                target=str(script),
                argv=argv or [],
                cwd=str(self.tmp_path),
                env=env or {},
                attempt_dir=str(attempt_dir),
                timeout=timeout,
            )
        )
        return attempt_id, attempt_dir

    def run(
        self,
        source: str,
        *,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[Exited, Path]:
        attempt_id, attempt_dir = self.launch(source, argv=argv, env=env, timeout=timeout)
        return self.wait(attempt_id), attempt_dir

    def wait(self, attempt_id: int, timeout: float = 30.0) -> Exited:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for exited in self.executor.poll(0.5):
                if exited.attempt_id == attempt_id:
                    return exited
                pytest.fail(f"unexpected exit {exited}")
        pytest.fail(f"attempt {attempt_id} did not exit within {timeout} s")


@pytest.fixture
def runner(executor: LocalExecutor, tmp_path: Path) -> Runner:
    return Runner(executor, tmp_path)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(predicate: object, timeout: float = 10.0, what: str = "condition") -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


# -- exit codes ---------------------------------------------------------------------------------------


def test_success_exit_code_zero_and_argv_cwd_env(runner: Runner, tmp_path: Path) -> None:
    exited, attempt_dir = runner.run(
        """
        import os, sys
        print(sys.argv[1:], os.getcwd(), os.environ["GREETING"], __name__, os.path.basename(__file__))
        """,
        argv=["a", "b c"],
        env={"GREETING": "hi"},
    )
    assert exited.returncode == 0
    assert not exited.killed
    out = read(attempt_dir / "stdout.log")
    assert out == f"['a', 'b c'] {tmp_path} hi __main__ task_1.py\n"
    assert not (attempt_dir / "error.json").exists()


@pytest.mark.parametrize(
    ("statement", "code", "stderr"),
    [
        ("sys.exit()", 0, ""),
        ("sys.exit(0)", 0, ""),
        ("sys.exit(3)", 3, ""),
        ("sys.exit(None)", 0, ""),
        ("sys.exit('bad input')", 1, "bad input\n"),
        ("sys.exit(256 + 7)", 7, ""),
        ("raise SystemExit(5)", 5, ""),
        ("os._exit(9)", 9, ""),
    ],
)
def test_sys_exit_semantics(runner: Runner, statement: str, code: int, stderr: str) -> None:
    exited, attempt_dir = runner.run(f"import os, sys\n{statement}\nprint('not reached')\n")
    assert exited.returncode == code
    assert read(attempt_dir / "stderr.log") == stderr
    assert read(attempt_dir / "stdout.log") == ""


def test_uncaught_exception_writes_traceback_and_error_json(runner: Runner) -> None:
    exited, attempt_dir = runner.run(
        """
        def inner():
            raise ValueError("boom")
        print("before")
        inner()
        """
    )
    assert exited.returncode == 1
    stderr = read(attempt_dir / "stderr.log")
    assert stderr.startswith("Traceback (most recent call last):\n")
    assert 'task_1.py", line 5, in <module>' in stderr
    assert "taskmain" not in stderr  # the trace starts in user code, as with `python task.py`
    assert stderr.endswith("ValueError: boom\n")
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"] == "ValueError: boom"
    assert error["error_trace"] == stderr
    assert read(attempt_dir / "stdout.log") == "before\n"


def test_a_syntax_error_is_the_task_s_error(runner: Runner) -> None:
    exited, attempt_dir = runner.run("print('fine')\nx = (\n")
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"].startswith("SyntaxError: '(' was never closed")
    stderr = read(attempt_dir / "stderr.log")
    assert stderr == error["error_trace"]
    assert 'task_1.py", line 2' in stderr
    assert "taskmain" not in stderr
    assert read(attempt_dir / "stdout.log") == ""


def test_exception_class_from_a_module_is_qualified(runner: Runner) -> None:
    exited, attempt_dir = runner.run("import json\njson.loads('{')\n")
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"].startswith("json.decoder.JSONDecodeError: Expecting property name")


def test_missing_python_file_is_a_clear_failure(executor: LocalExecutor, tmp_path: Path) -> None:
    attempt_dir = tmp_path / "a"
    executor.launch(
        LaunchSpec(
            7, TaskKind.PYTHON_FILE, str(tmp_path / "nope.py"), [], str(tmp_path), {}, str(attempt_dir)
        )
    )
    exited = Runner(executor, tmp_path).wait(7)
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert (
        error["error"]
        == f"python file '{tmp_path / 'nope.py'}' does not exist (looked at {tmp_path / 'nope.py'})"
    )


def test_missing_working_directory_is_a_clear_failure(executor: LocalExecutor, tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text("pass\n")
    attempt_dir = tmp_path / "a"
    executor.launch(
        LaunchSpec(8, TaskKind.PYTHON_FILE, str(script), [], str(tmp_path / "gone"), {}, str(attempt_dir))
    )
    exited = Runner(executor, tmp_path).wait(8)
    assert exited.returncode == 1
    error = json.loads((attempt_dir / "error.json").read_text())
    assert error["error"] == f"working directory '{tmp_path / 'gone'}' does not exist"


def test_logging_reaches_stderr_and_atexit_and_unclosed_files_are_finished(
    runner: Runner, tmp_path: Path
) -> None:
    exited, attempt_dir = runner.run(
        f"""
        import atexit, logging, threading, time
        logging.getLogger("task").warning("careful")
        atexit.register(lambda: print("atexit ran"))
        out = open({str(tmp_path / "unclosed.txt")!r}, "w")
        out.write("data without close")
        def late():
            time.sleep(0.05)
            print("thread done")
        threading.Thread(target=late).start()
        """
    )
    assert exited.returncode == 0
    assert read(attempt_dir / "stderr.log") == "careful\n"
    assert read(attempt_dir / "stdout.log") == "thread done\natexit ran\n"
    assert (tmp_path / "unclosed.txt").read_text() == "data without close"


def test_the_script_directory_is_first_on_sys_path(runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("VALUE = 42\n")
    exited, attempt_dir = runner.run("import helper_mod\nprint(helper_mod.VALUE)\n")
    assert exited.returncode == 0
    assert read(attempt_dir / "stdout.log") == "42\n"


def test_each_task_gets_fresh_random_state(runner: Runner) -> None:
    first, dir1 = runner.run("import random\nprint(random.random())\n")
    second, dir2 = runner.run("import random\nprint(random.random())\n")
    assert first.returncode == second.returncode == 0
    assert read(dir1 / "stdout.log") != read(dir2 / "stdout.log")


# -- logs and kills -----------------------------------------------------------------------------------


def test_output_is_complete_when_killed_mid_print(runner: Runner) -> None:
    attempt_id, attempt_dir = runner.launch(
        """
        import signal, sys
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("READY")
        i = 0
        while True:
            print(f"tick {i}")
            print(f"err {i}", file=sys.stderr)
            i += 1
        """
    )
    wait_for(lambda: "tick 200" in read(attempt_dir / "stdout.log"), what="ticks in stdout.log")
    runner.executor.kill(attempt_id, grace=0)
    exited = runner.wait(attempt_id)
    assert exited.killed
    assert exited.returncode == -signal.SIGKILL
    lines = read(attempt_dir / "stdout.log").split("\n")
    assert lines[0] == "READY"
    complete = lines[1:-1]  # the last line may be cut by the kill
    assert complete == [f"tick {i}" for i in range(len(complete))]
    errors = read(attempt_dir / "stderr.log").split("\n")[:-1]
    assert errors == [f"err {i}" for i in range(len(errors))]


def test_kill_terminates_politely_first(runner: Runner) -> None:
    attempt_id, attempt_dir = runner.launch(
        """
        import signal, sys, time
        def bye(signum, frame):
            print("got SIGTERM")
            sys.exit(4)
        signal.signal(signal.SIGTERM, bye)
        print("READY")
        time.sleep(60)
        """
    )
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    runner.executor.kill(attempt_id, grace=5.0)
    exited = runner.wait(attempt_id)
    assert (exited.returncode, exited.killed) == (4, True)
    assert read(attempt_dir / "stdout.log") == "READY\ngot SIGTERM\n"


def test_a_task_ignoring_sigterm_dies_by_sigkill_after_the_grace(runner: Runner) -> None:
    attempt_id, attempt_dir = runner.launch(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("READY")
        time.sleep(60)
        """
    )
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    started = time.monotonic()
    runner.executor.kill(attempt_id, grace=0.3)
    assert runner.executor.poll(0.1) == []  # still alive within the grace
    exited = runner.wait(attempt_id)
    took = time.monotonic() - started
    assert exited.returncode == -signal.SIGKILL
    assert exited.killed
    assert 0.29 <= took < 5.0


def test_default_sigterm_kills_at_once(runner: Runner) -> None:
    attempt_id, attempt_dir = runner.launch("import time\nprint('READY')\ntime.sleep(60)\n")
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    runner.executor.kill(attempt_id, grace=30)
    exited = runner.wait(attempt_id, timeout=5)
    assert (exited.returncode, exited.killed, exited.timed_out) == (-signal.SIGTERM, True, False)


def test_timeout_kills_the_task(runner: Runner) -> None:
    started = time.monotonic()
    exited, _ = runner.run("import time\ntime.sleep(60)\n", timeout=0.3)
    assert time.monotonic() - started < 10
    assert (exited.returncode, exited.killed, exited.timed_out) == (-signal.SIGTERM, True, True)


def test_kill_of_an_unknown_or_finished_attempt_is_ignored(runner: Runner) -> None:
    exited, _ = runner.run("pass\n")
    assert exited.returncode == 0
    runner.executor.kill(exited.attempt_id)
    runner.executor.kill(12345)
    assert runner.executor.poll(0.05) == []


def test_launching_a_running_attempt_again_fails(runner: Runner) -> None:
    attempt_id, _ = runner.launch("import time\ntime.sleep(60)\n")
    spec = LaunchSpec(attempt_id, TaskKind.PYTHON_FILE, "x.py", [], ".", {}, ".")
    with pytest.raises(LaunchError, match=f"attempt {attempt_id} is already running"):
        runner.executor.launch(spec)
    runner.executor.kill(attempt_id, grace=0)
    assert runner.wait(attempt_id).killed


# -- process trees ------------------------------------------------------------------------------------

FAMILY = """
    import os, sys, time
    out = sys.argv[1]
    def note(name):  # atomically, so a reader never sees an empty file
        with open(os.path.join(out, name + ".tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.rename(os.path.join(out, name + ".tmp"), os.path.join(out, name))
    child = os.fork()
    if child == 0:
        grandchild = os.fork()
        if grandchild == 0:
            os.setsid()  # leaves the task's process group
            if os.fork() == 0:  # and its own child, in that new session
                note("great")
                time.sleep(60)
                os._exit(0)
            note("grandchild")
            time.sleep(60)
            os._exit(0)
        note("child")
        time.sleep(60)
        os._exit(0)
    while len([n for n in os.listdir(out) if not n.endswith(".tmp")]) < 3:
        time.sleep(0.01)
    print("READY", flush=True)
"""


def _notes(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if not p.name.endswith(".tmp")]


def _family_pids(out: Path) -> list[int]:
    return [int((out / name).read_text()) for name in ("child", "grandchild", "great")]


def test_nothing_remains_after_a_normal_exit(runner: Runner, tmp_path: Path) -> None:
    out = tmp_path / "pids"
    out.mkdir()
    exited, attempt_dir = runner.run(FAMILY, argv=[str(out)])
    assert exited.returncode == 0, read(attempt_dir / "stderr.log")
    pids = _family_pids(out)
    wait_for(lambda: not any(alive(p) for p in pids), timeout=5, what="the task's descendants to die")
    assert find_tagged(runner.executor.token) == {}


def test_nothing_remains_after_a_kill(runner: Runner, tmp_path: Path) -> None:
    out = tmp_path / "pids"
    out.mkdir()
    attempt_id, attempt_dir = runner.launch(textwrap.dedent(FAMILY) + "time.sleep(60)\n", argv=[str(out)])
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    pids = _family_pids(out)
    assert all(alive(p) for p in pids)
    assert set(find_tagged(runner.executor.token, [attempt_id])) >= set(pids)
    runner.executor.kill(attempt_id, grace=1.0)
    exited = runner.wait(attempt_id)
    assert exited.killed
    wait_for(lambda: not any(alive(p) for p in pids), timeout=5, what="the task's descendants to die")


def test_parallel_launches(runner: Runner) -> None:
    ids = [runner.launch(f"import time\ntime.sleep(0.2)\nprint({i})\n")[0] for i in range(6)]
    started = time.monotonic()
    assert len(set(runner.executor.live().values())) == 6
    seen: dict[int, Exited] = {}
    while len(seen) < 6 and time.monotonic() - started < 30:
        seen.update({e.attempt_id: e for e in runner.executor.poll(1.0)})
    assert sorted(seen) == sorted(ids)
    assert all(e.returncode == 0 for e in seen.values())
    assert time.monotonic() - started < 5  # they ran side by side, not one after another
    for i, attempt_id in enumerate(ids):
        assert read(runner.tmp_path / f"attempt_{attempt_id}" / "stdout.log") == f"{i}\n"


def test_close_kills_running_tasks_and_reports_them(tmp_path: Path) -> None:
    ex = LocalExecutor()
    runner = Runner(ex, tmp_path)
    ex.start()
    attempt_id, attempt_dir = runner.launch("import time\nprint('READY')\ntime.sleep(60)\n")
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    pid = ex.live()[attempt_id]
    exits = ex.close(grace=0.5)
    assert [(e.attempt_id, e.killed) for e in exits] == [(attempt_id, True)]
    assert not alive(pid)
    assert find_tagged(ex.token) == {}


def test_a_dead_zygote_is_reported_and_replaced(runner: Runner) -> None:
    attempt_id, attempt_dir = runner.launch("import time\nprint('READY')\ntime.sleep(60)\n")
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    pid = runner.executor.live()[attempt_id]
    zygote = runner.executor.zygote_pid
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    exited = runner.wait(attempt_id)
    assert (exited.returncode, exited.killed) == (-signal.SIGKILL, False)
    wait_for(lambda: not alive(pid), timeout=5, what="the orphaned task to die")
    again, _ = runner.run("print('fine')\n")  # a new zygote
    assert again.returncode == 0
    assert runner.executor.zygote_pid not in (None, zygote)


HOST = """
import sys, time
from sluice.executors import LaunchSpec, TaskKind
from sluice.executors.local import LocalExecutor

script, out, attempt_dir = sys.argv[1:4]
ex = LocalExecutor()
ex.start()
for i in range(2):
    where = out + str(i)
    ex.launch(LaunchSpec(i + 1, TaskKind.PYTHON_FILE, script, [where], where, {}, attempt_dir + str(i)))
print(ex.token, flush=True)
time.sleep(60)
"""


def test_kill_9_of_the_host_leaves_no_task_process(tmp_path: Path) -> None:
    script = tmp_path / "family.py"
    script.write_text(textwrap.dedent(FAMILY) + "time.sleep(60)\n")
    outs = [tmp_path / f"pids{i}" for i in range(2)]
    for out in outs:
        out.mkdir()
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(script), str(tmp_path / "pids"), str(tmp_path / "attempt")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        token = host.stdout.readline().strip()
        wait_for(lambda: all(len(_notes(o)) == 3 for o in outs), what="both task families")
        pids = [p for out in outs for p in _family_pids(out)]
        assert len(find_tagged(token)) >= 8  # 2 leaders + 2 x 3 descendants
        host.kill()
        host.wait()
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if host.stdout is not None:
            host.stdout.close()
    wait_for(lambda: not any(alive(p) for p in pids), timeout=10, what="every task process to die")
    wait_for(lambda: find_tagged(token) == {}, timeout=10, what="no tagged process")


def test_an_execd_daemon_in_a_new_session_is_killed_at_exit(runner: Runner, tmp_path: Path) -> None:
    exited, attempt_dir = runner.run(
        """
        import subprocess, sys
        daemon = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        print(daemon.pid)
        """
    )
    assert exited.returncode == 0, read(attempt_dir / "stderr.log")
    daemon = int(read(attempt_dir / "stdout.log"))
    wait_for(lambda: not alive(daemon), timeout=5, what="the exec'd daemon to die")


def _children(pid: int) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(name))
    return found


def test_a_launch_survives_the_death_of_the_spare(runner: Runner) -> None:
    first, _ = runner.run("pass\n")  # the zygote is up and has forked a spare
    assert first.returncode == 0
    zygote = runner.executor.zygote_pid
    assert zygote is not None
    wait_for(lambda: len(_children(zygote)) == 1, timeout=5, what="the spare")
    (spare,) = _children(zygote)
    os.kill(spare, signal.SIGKILL)
    # Once reaped, the zygote knows; a spare killed while being handed a task would take the task with it.
    wait_for(lambda: not Path(f"/proc/{spare}").exists(), timeout=5, what="the zygote to reap the spare")
    exited, attempt_dir = runner.run("import os\nprint(os.getpid())\n")
    assert exited.returncode == 0
    assert exited.pid == int(read(attempt_dir / "stdout.log")) != spare


def test_launch_returns_the_task_pid_which_is_its_process_group(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    script = tmp_path / "ids.py"
    script.write_text("import os\nprint(os.getpid(), os.getpgid(0), os.getsid(0))\n")
    runner = Runner(executor, tmp_path)
    for attempt_id in (1, 2, 3):  # the first may be forked on demand, the next ones are spares
        attempt_dir = tmp_path / f"ids{attempt_id}"
        pid = executor.launch(
            LaunchSpec(attempt_id, TaskKind.PYTHON_FILE, str(script), [], str(tmp_path), {}, str(attempt_dir))
        )
        exited = runner.wait(attempt_id)
        assert exited.returncode == 0
        assert read(attempt_dir / "stdout.log") == f"{pid} {pid} {pid}\n"
        assert exited.pid == pid


def test_poll_waits_its_timeout_even_without_a_zygote() -> None:
    ex = LocalExecutor()  # never started
    started = time.monotonic()
    assert ex.poll(0.2) == []
    assert time.monotonic() - started >= 0.19
    assert ex.close() == []


def test_poll_zero_returns_exits_that_already_arrived(runner: Runner) -> None:
    attempt_id, attempt_dir = runner.launch("print('done')\n")
    wait_for(lambda: "done" in read(attempt_dir / "stdout.log"), what="the task's output")
    deadline = time.monotonic() + 10
    exits: list[Exited] = []
    while not exits and time.monotonic() < deadline:
        exits = runner.executor.poll(0)
        time.sleep(0.01)
    assert [e.attempt_id for e in exits] == [attempt_id]


def test_the_zygote_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG fires when the starting *thread* exits; the zygote must tell that from our death."""
    import threading

    ex = LocalExecutor()
    runner = Runner(ex, tmp_path)
    results: list[Exited] = []

    def start_and_run() -> None:  # the zygote is up (and has armed PDEATHSIG) before the thread ends
        ex.start()
        results.append(runner.run("pass\n")[0])

    starter = threading.Thread(target=start_and_run)
    starter.start()
    starter.join()
    try:
        zygote = ex.zygote_pid
        assert zygote is not None
        time.sleep(0.3)  # time for the signal to arrive and be handled
        assert alive(zygote)
        second, _ = runner.run("pass\n")
        assert [e.returncode for e in [*results, second]] == [0, 0]
        assert ex.zygote_pid == zygote
    finally:
        ex.close()


# -- containment: cgroups and subreapers (ADR 0004, revision 2) ---------------------------------------

ESCAPER = """
import os, subprocess, sys, time
DAEMON = '''
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
'''
subprocess.Popen([sys.executable, "-c", DAEMON, sys.argv[1]], env={}, start_new_session=True).wait()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
print("READY", flush=True)
time.sleep(60)
"""


def test_each_task_process_is_in_a_cgroup_of_its_own_and_it_is_removed(
    runner: Runner, tmp_path: Path
) -> None:
    exited, attempt_dir = runner.run("print(open('/proc/self/cgroup').read().splitlines()[-1])\n")
    if runner.executor.cgroup is None:
        pytest.skip("this host gives no writable cgroup v2 tree: the subreapers alone contain the tasks")
    assert exited.returncode == 0, read(attempt_dir / "stderr.log")
    line = read(attempt_dir / "stdout.log").strip()
    assert line.startswith("0::"), line
    zygote = runner.executor.zygote_pid
    assert line.endswith(f"/sluice-{zygote}-{runner.executor.token}/p{exited.pid}"), line
    cgroup = Path(runner.executor.cgroup) / f"p{exited.pid}"
    wait_for(lambda: not cgroup.exists(), timeout=5, what=f"{cgroup} to be removed")


def test_close_removes_the_zygotes_cgroup(tmp_path: Path) -> None:
    ex = LocalExecutor()
    runner = Runner(ex, tmp_path)
    ex.start()
    exited, _ = runner.run("pass\n")
    assert exited.returncode == 0
    base = ex.cgroup
    ex.close()
    if base is None:
        pytest.skip("this host gives no writable cgroup v2 tree")
    assert not Path(base).exists()


@pytest.mark.parametrize("mode", ["auto", "subreaper"])
def test_a_kill_reaches_a_daemon_that_left_the_session_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("SLUICE_CONTAINMENT", mode)
    ex = LocalExecutor()
    runner = Runner(ex, tmp_path)
    ex.start()
    try:
        pid_file = tmp_path / "daemon"
        attempt_id, attempt_dir = runner.launch(ESCAPER, argv=[str(pid_file)])
        wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
        daemon = int(pid_file.read_text())
        assert alive(daemon)
        assert daemon not in find_tagged(ex.token), "the daemon carries no marker: only containment finds it"
        if mode == "subreaper":
            assert ex.cgroup is None
        ex.kill(attempt_id, grace=0.5)
        assert runner.wait(attempt_id).killed
        wait_for(lambda: not alive(daemon), timeout=5, what=f"the daemon {daemon} to die")
    finally:
        ex.close()


def test_a_lost_zygotes_cgroup_is_killed_with_everything_in_it(runner: Runner, tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon"
    attempt_id, attempt_dir = runner.launch(ESCAPER, argv=[str(pid_file)])
    wait_for(lambda: "READY" in read(attempt_dir / "stdout.log"), what="READY")
    daemon = int(pid_file.read_text())
    if runner.executor.cgroup is None:
        os.kill(daemon, signal.SIGKILL)
        pytest.skip(
            "without cgroups, what escaped both marker and subreapers dies only with the zygote's sweep"
        )
    zygote = runner.executor.zygote_pid
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    exited = runner.wait(attempt_id)
    assert exited.returncode == -signal.SIGKILL
    wait_for(lambda: not alive(daemon), timeout=5, what=f"the daemon {daemon} to die")
    base = runner.executor.cgroup
    assert base is not None
    assert not Path(base).exists()


DETACHER = """
import os, subprocess, sys, time
from sluice.executors.containment import detached_marker
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
env = {**os.environ, **detached_marker(os.environ.get("SLUICE_PROCESS_TAG"))}
env.pop("SLUICE_PROCESS_TAG")
server = subprocess.Popen(SLEEP, env=env, start_new_session=True)  # as a job-cluster server is started
escaper = subprocess.Popen(SLEEP, env={}, start_new_session=True)
print(server.pid, escaper.pid, flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.mark.parametrize("mode", ["auto", "subreaper"])
@pytest.mark.parametrize("end", ["exit", "kill"])
def test_a_detached_job_cluster_server_outlives_its_task_and_nothing_else_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, end: str
) -> None:
    monkeypatch.setenv("SLUICE_CONTAINMENT", mode)
    ex = LocalExecutor()
    runner = Runner(ex, tmp_path)
    ex.start()
    server = 0
    try:
        attempt_id, attempt_dir = runner.launch(DETACHER, argv=["0" if end == "exit" else "60"])
        wait_for(lambda: read(attempt_dir / "stdout.log").endswith("\n"), what="the two pids")
        server, escaper = (int(p) for p in read(attempt_dir / "stdout.log").split())
        if end == "kill":
            ex.kill(attempt_id, grace=0.5)
        exited = runner.wait(attempt_id)
        assert exited.returncode == 0 if end == "exit" else exited.killed, read(attempt_dir / "stderr.log")
        wait_for(lambda: not alive(escaper), timeout=5, what="the escaper to be killed")
        assert alive(server), "the detached server was killed with its task"
    finally:
        if server and alive(server):
            os.kill(server, signal.SIGKILL)
        ex.close()


def test_the_cgroup_of_a_zygote_that_died_is_removed_by_the_next_one(tmp_path: Path) -> None:
    first = LocalExecutor()
    runner = Runner(first, tmp_path)
    first.start()
    try:
        exited, _ = runner.run("pass\n")  # the zygote is up, a spare waits in its cgroup
        assert exited.returncode == 0
        base = first.cgroup
        if base is None:
            pytest.skip("this host gives no writable cgroup v2 tree")
        zygote = first.zygote_pid
        assert zygote is not None
        first._cgroup = None  # as if the driver had died with its zygote: nobody cleans up after it
        os.kill(zygote, signal.SIGKILL)
        wait_for(lambda: not alive(zygote), timeout=5, what="the zygote to be gone")
        assert Path(base).is_dir(), "left behind"
    finally:
        first.close()
    second = LocalExecutor()
    again = Runner(second, tmp_path / "again")
    (tmp_path / "again").mkdir()
    second.start()
    try:
        assert again.run("pass\n")[0].returncode == 0
        assert not Path(base).exists(), f"{base} of a dead zygote is still there"
    finally:
        second.close()
