"""The Spark Connect server process: ``python -m sluice.compute.serve --engine sail|spark --port P``.

Started by :mod:`sluice.compute.server`, never by users. It prints one line ``LISTENING <port>`` on stdout
once the server accepts connections, then serves until:

- SIGTERM or SIGINT (``stop``), or
- with ``--owned``: end of file on stdin, i.e. the owner process is gone (its end of the pipe closes even
  when it is ``kill -9``-ed), or the parent-death signal the owner asked for;
- with ``--watch-pid P --watch-ticks T``: the process P started at T (clock ticks since boot) is gone, checked
  twice a second (a job cluster started by one of a run's tasks lives as long as the run's driver).

Engine ``sail`` runs pysail's server in this process. Engine ``spark`` starts Apache Spark's Spark Connect
server (a JVM from the ``pyspark`` package) as a child that dies with this process (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1
#: Seconds the JVM server has to open its port.
SPARK_START_TIMEOUT = 120.0


def _parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when the thread that forked it exits."""
    import ctypes  # only server processes need ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _watch_owner(stop: threading.Event) -> None:
    """Set ``stop`` when stdin reaches end of file: the owner closed its end or died."""

    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _watch_pid(pid: int, ticks: int, stop: threading.Event) -> None:
    """Set ``stop`` once process ``pid`` (started at ``ticks``) is gone (also when the pid was reused)."""

    def started() -> int | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        return None if fields[0] == b"Z" else int(fields[19])

    def watch() -> None:
        while not stop.wait(0.5):
            if started() != ticks:
                stop.set()

    threading.Thread(target=watch, name="pid-watch", daemon=True).start()


def _serve_sail(port: int, stop: threading.Event) -> None:
    from pysail.spark import SparkConnectServer  # type: ignore[import-untyped]  # no stubs; only importer

    server = SparkConnectServer("127.0.0.1", port)
    server.start(background=True)
    bound = server.listening_address[1]
    print(f"LISTENING {bound}", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()


def _spark_command(port: int) -> list[str]:
    """The JVM Spark Connect server of the installed ``pyspark`` package, in the foreground."""
    try:
        import pyspark  # the full pyspark package, not pyspark-client
    except ImportError:
        raise SystemExit(
            "engine 'spark' needs the full pyspark package: pip install 'pyspark>=4,<5'"
        ) from None
    spark_home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
    submit = Path(spark_home) / "bin" / "spark-submit"
    if not submit.exists() or not list((Path(spark_home) / "jars").glob("spark-connect*.jar")):
        raise SystemExit(
            f"engine 'spark' needs Apache Spark with Spark Connect at {spark_home} (bin/spark-submit and "
            "jars/spark-connect_*.jar): install the full 'pyspark>=4,<5' package, not pyspark-client"
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SystemExit(
            "engine 'spark' needs Java 17 or newer: install it (e.g. apt install openjdk-17-jre)"
        )
    command = [
        str(submit),
        "--class",
        "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        "spark.sql.session.timeZone=UTC",
    ]
    if list((Path(spark_home) / "jars").glob("delta-spark*.jar")):
        # Delta Lake's jars are not part of pyspark: with them (copied into jars/, or SPARK_HOME of a
        # Spark with Delta) tables are Delta as on Sail; without them the catalog's Delta tables are out
        # of reach and the server says so in its log.
        command += [
            "--conf",
            "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf",
            "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
        ]
    else:
        print(
            f"sluice: no Delta Lake jars in {spark_home}/jars: Delta tables are unavailable on this server",
            file=sys.stderr,
            flush=True,
        )
    return [*command, "spark-internal"]


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _serve_spark(port: int, stop: threading.Event) -> None:
    if port == 0:
        with socket.socket() as s:  # the JVM cannot report a port it chose: choose one for it
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    jvm = subprocess.Popen(
        _spark_command(port),
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: _parent_death_signal(signal.SIGKILL),
    )
    deadline = time.monotonic() + SPARK_START_TIMEOUT
    while not _port_open(port):
        if jvm.poll() is not None:
            raise SystemExit(
                f"the Spark Connect server (JVM) exited with code {jvm.returncode} before listening"
            )
        if time.monotonic() > deadline or stop.wait(0.2):
            jvm.kill()
            raise SystemExit(
                f"the Spark Connect server did not open port {port} in {SPARK_START_TIMEOUT:.0f} s"
            )
    print(f"LISTENING {port}", flush=True)
    try:
        while not stop.wait(0.5) and jvm.poll() is None:
            pass
    finally:
        if jvm.poll() is None:
            jvm.terminate()
            try:
                jvm.wait(10)
            except subprocess.TimeoutExpired:
                jvm.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sluice.compute.serve")
    parser.add_argument("--engine", choices=("sail", "spark"), default="sail")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--owned", action="store_true", help="exit when stdin closes (the owner is gone)")
    parser.add_argument("--owner-pid", type=int, default=0)
    parser.add_argument("--watch-pid", type=int, default=0, help="exit when this process is gone")
    parser.add_argument("--watch-ticks", type=int, default=0, help="the start time of --watch-pid")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.watch_pid:
        _watch_pid(args.watch_pid, args.watch_ticks, stop)
    if args.owned:
        _watch_owner(stop)
        if args.owner_pid and os.getppid() != args.owner_pid:
            return  # the owner died before we got here
    if args.engine == "sail":
        _serve_sail(args.port, stop)
    else:
        _serve_spark(args.port, stop)


if __name__ == "__main__":
    main()
