"""Attempt logs keep their tail: CappedLog on a real file, written by itself and by a child process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sluice.executors.caplog import CappedLog

NOTE = re.compile(
    rb"\[sluice: (\d+) bytes of earlier output were dropped; "
    rb"each log of an attempt keeps its last (\d+) bytes \(SLUICE_MAX_LOG_BYTES\)\]\n"
)


def open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def test_a_log_keeps_its_tail_with_a_note_of_what_was_dropped(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    fd = open_log(path)
    log = CappedLog(fd, str(path), 8192)
    lines = [f"line {i:06d} {'x' * 80}\n".encode() for i in range(2000)]
    for line in lines:
        log.write(line)
        assert path.stat().st_size <= 8192 + 8192 // 4 + 200, "the file never grows far past the cap"
    log.finish()
    os.close(fd)
    data = path.read_bytes()
    note = NOTE.match(data)
    assert note is not None, data[:200]
    kept = data[note.end() :]
    assert len(kept) <= 8192
    assert kept.endswith(lines[-1])
    assert kept.startswith(b"line "), "the tail starts at a line"
    total = sum(len(line) for line in lines)
    assert int(note.group(1)) + len(kept) == total, "the note counts exactly what was dropped"
    assert int(note.group(2)) == 8192
    assert b"".join(lines).endswith(kept)


def test_a_small_log_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "stderr.log"
    fd = open_log(path)
    log = CappedLog(fd, str(path), 8192)
    log.write(b"hello\n")
    log.finish()
    os.close(fd)
    assert path.read_bytes() == b"hello\n"


def test_output_a_child_wrote_to_the_descriptor_is_cut_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    fd = open_log(path)
    log = CappedLog(fd, str(path), 8192)
    log.write(b"from the task\n")
    code = "import sys\nfor i in range(5000): sys.stdout.write(f'child {i}\\n')\nprint('child done')"
    subprocess.run([sys.executable, "-c", code], stdout=fd, check=True)
    assert path.stat().st_size > 8192 * 2
    log.finish()
    log.write(b"after\n")  # the descriptor still writes to the same file, after the kept tail
    os.close(fd)
    data = path.read_bytes()
    note = NOTE.match(data)
    assert note is not None
    assert data.endswith(b"child 4999\nchild done\nafter\n")
    assert len(data) - note.end() <= 8192 + len(b"after\n")


def test_a_log_that_cannot_be_cut_keeps_the_task_writing(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    fd = open_log(path)
    log = CappedLog(fd, str(path), 4096)
    path.unlink()  # a task removed its own attempt directory's log: the descriptor still writes
    for _ in range(200):
        assert log.write(b"x" * 99 + b"\n") == 100
    log.finish()
    os.close(fd)
