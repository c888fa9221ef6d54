"""Spark Connect server processes (real Sail servers): start, readiness, stop, failures, no orphans."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sluice.compute import jobcluster
from sluice.compute.clusters import cluster_endpoint, list_clusters, start_cluster, stop_cluster
from sluice.compute.manager import ComputeManager, compute_target
from sluice.compute.server import (
    ComputeError,
    ServerInfo,
    process_start_ticks,
    read_states,
    start_server,
    sweep,
    wait_for_port,
)


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_start_is_ready_and_stop_leaves_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    assert server.endpoint.startswith("sc://127.0.0.1:")
    assert wait_for_port("127.0.0.1", server.info.port, timeout=0)
    assert [i.server_id for i in read_states(tmp_path)] == [server.info.server_id]
    assert Path(server.info.log).is_file()
    server.stop()
    assert _gone(server.info.pid)
    assert read_states(tmp_path) == []
    assert not wait_for_port("127.0.0.1", server.info.port, timeout=0)


def test_a_taken_port_fails_with_the_log_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ComputeError) as info:
            start_server(tmp_path, port=port)
    message = str(info.value)
    assert "exited with code" in message
    assert "compute/logs/" in message
    assert read_states(tmp_path) == []


def test_unknown_engine_and_missing_apache_spark_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ComputeError, match="compute engine 'flink' is unknown"):
        start_server(tmp_path, engine="flink")
    # This environment has pyspark-client, not the full pyspark package with its JVM server.
    with pytest.raises(ComputeError, match=r"pyspark.*\(log: .*compute/logs/"):
        start_server(tmp_path, engine="spark")


_OWNER = """
import json, sys, time
from pathlib import Path
from sluice.compute.manager import ComputeManager
manager = ComputeManager(Path(sys.argv[1]))
endpoint = manager.endpoint_for(1, "main")
print(json.dumps({"endpoint": endpoint, "pid": manager.servers_of(1)[0].info.pid}), flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_owner_leaves_no_server(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(_OWNER))
    owner = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        assert wait_for_port("127.0.0.1", int(started["endpoint"].rsplit(":", 1)[1]), timeout=5)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert _gone(started["pid"]), "the server outlived its kill -9-ed owner"
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    sweep(tmp_path)
    assert read_states(tmp_path) == []


def test_sweep_stops_a_server_whose_owner_is_gone(tmp_path: Path) -> None:
    server = start_server(tmp_path, detached=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    state = json.loads(server.state_file.read_text())
    state.update(owner_pid=int(dead.stdout), owner_ticks=1)  # an owner that no longer exists
    server.state_file.write_text(json.dumps(state))
    swept = sweep(tmp_path)
    assert [s.server_id for s in swept] == [server.info.server_id]
    assert _gone(server.info.pid)
    assert read_states(tmp_path) == []


def test_manager_shares_a_server_per_run_and_cluster_key(tmp_path: Path) -> None:
    with ComputeManager(tmp_path) as manager:
        first = manager.endpoint_for(7, "etl")
        assert manager.endpoint_for(7, "etl") == first
        other = manager.endpoint_for(7, "ml")
        assert other != first
        pids = [s.info.pid for s in manager.servers_of(7)]
        assert len(pids) == 2
        manager.release_run(7)
        assert all(_gone(p) for p in pids)
        assert manager.servers_of(7) == []
        assert manager.task_env(8, {"tasks": [{"task_key": "w", "python_wheel_task": {}}]}, "w") == {}
        last = manager.servers_of(8)
        assert last == [], "a task that cannot use spark starts no server"
        env = manager.task_env(8, {"tasks": [{"task_key": "s", "spark_python_task": {}}]}, "s")
        assert "SPARK_REMOTE" not in env, "a job cluster starts on the task's first use of spark"
        assert env[jobcluster.KEY_ENV] == "__default__"
        assert not list(jobcluster.run_dir(tmp_path, 8).glob("*.json"))
        endpoint = jobcluster.endpoint(env, tmp_path, dict)
        assert endpoint.startswith("sc://127.0.0.1:")
        assert jobcluster.endpoint(env, tmp_path, dict) == endpoint, "the run's other tasks share it"
        (state,) = jobcluster.run_dir(tmp_path, 8).glob("*.json")
        pid = json.loads(state.read_text())["pid"]
        assert not _gone(pid)
    assert _gone(pid), "close() stops the job clusters of the runs it saw"
    assert not jobcluster.run_dir(tmp_path, 8).exists()


def test_a_job_cluster_dies_with_the_driver_that_owns_it(tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = process_start_ticks(owner.pid)
        assert ticks is not None
        env = jobcluster.task_env(tmp_path, 9, "etl", "sail", (owner.pid, ticks))
        jobcluster.endpoint(env, tmp_path, dict)
        (state,) = jobcluster.run_dir(tmp_path, 9).glob("*.json")
        pid = json.loads(state.read_text())["pid"]
        assert not _gone(pid)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid), "the server watches its owner (the driver) and exits when it is gone"


def test_compute_target_of_tasks() -> None:
    settings = {
        "job_clusters": [
            {"job_cluster_key": "big", "new_cluster": {"spark_conf": {"sluice.compute.engine": "spark"}}},
            {
                "job_cluster_key": "far",
                "new_cluster": {"spark_conf": {"sluice.compute.remote": "sc://h:15002"}},
            },
        ]
    }
    assert compute_target(settings, {"job_cluster_key": "big"}) == ("job", "big", "spark")
    assert compute_target(settings, {"job_cluster_key": "far"}) == ("remote", "far", "sc://h:15002")
    assert compute_target(settings, {"existing_cluster_id": "dev"}) == ("cluster", "dev", "")
    assert compute_target(settings, {"existing_cluster_id": "sc://x:1"}) == ("remote", "sc://x:1", "sc://x:1")
    assert compute_target(settings, {})[:2] == ("job", "__default__")


def test_all_purpose_clusters(tmp_path: Path) -> None:
    info = start_cluster(tmp_path, "dev")
    try:
        assert [i.server_id for i in list_clusters(tmp_path)] == [info.server_id]
        assert cluster_endpoint(tmp_path, "dev") == info.endpoint
        with pytest.raises(ComputeError, match="already running"):
            start_cluster(tmp_path, "dev")
        with pytest.raises(ComputeError, match="sluice clusters start nope"):
            cluster_endpoint(tmp_path, "nope")
    finally:
        stopped: ServerInfo = stop_cluster(tmp_path, "dev")
    assert _gone(stopped.pid)
    assert list_clusters(tmp_path) == []
    with pytest.raises(ComputeError, match="no cluster named 'dev'"):
        stop_cluster(tmp_path, "dev")
