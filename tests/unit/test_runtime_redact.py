"""Secret redaction (sluice.runtime.redact): the matcher in-process, the stream hooks in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice.runtime import redact


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry of this test's own that installs no hook into pytest's streams."""
    monkeypatch.setattr(redact, "_values", set())
    monkeypatch.setattr(redact, "_pattern", None)
    monkeypatch.setattr(redact, "_prefixes", ((), frozenset(), 0))
    monkeypatch.setattr(redact, "_ipython_installed", True)  # makes register() skip its auto-install


def test_registered_values_are_replaced_longest_first_in_all_their_printed_forms() -> None:
    redact.register("hunter2")
    redact.register("hunter2-extended")
    redact.register('quo"te\\slash')
    assert redact.redact("pw=hunter2 and hunter2-extended.") == "pw=[REDACTED] and [REDACTED]."
    assert redact.redact(repr({"pw": 'quo"te\\slash'})) == "{'pw': '[REDACTED]'}"
    assert redact.redact(json.dumps({"pw": 'quo"te\\slash'})) == '{"pw": "[REDACTED]"}'
    assert redact.redact("nothing here") == "nothing here"


def test_empty_and_binary_values_are_not_registered() -> None:
    before = redact.registered()
    redact.register("")
    redact.register("   \n")
    redact.register(b"\xff\xfe")
    assert redact.registered() == before
    redact.register(b"bytes-s3cret")
    assert redact.redact("x bytes-s3cret y") == "x [REDACTED] y"


def test_message_contents_of_a_kernel_are_redacted_but_images_are_not() -> None:
    redact.register("kernel-s3cret")
    png = "aGVsbG8ga2VybmVsLXMzY3JldA=="
    content = {
        "data": {"text/plain": "'kernel-s3cret'", "text/html": "<i>kernel-s3cret</i>", "image/png": png}
    }
    out = redact.redact_message_content("display_data", content)
    assert out["data"] == {"text/plain": "'[REDACTED]'", "text/html": "<i>[REDACTED]</i>", "image/png": png}
    assert content["data"]["text/plain"] == "'kernel-s3cret'", "the original message is not changed"
    error = {
        "status": "error",
        "ename": "ValueError",
        "evalue": "kernel-s3cret",
        "traceback": ["a kernel-s3cret"],
    }
    assert redact.redact_message_content("execute_reply", error)["traceback"] == ["a [REDACTED]"]
    assert redact.redact_message_content("stream", {"name": "stdout", "text": "kernel-s3cret\n"})["text"] == (
        "[REDACTED]\n"
    )
    widget = {"comm_id": "c1", "data": {"state": {"value": "kernel-s3cret", "n": 3}}}
    shown = redact.redact_message_content("comm_msg", widget)["data"]
    assert shown == {"state": {"value": "[REDACTED]", "n": 3}}
    status = {"execution_state": "kernel-s3cret"}
    assert redact.redact_message_content("status", status) is status


def test_redaction_is_idempotent_and_covers_html_and_stripped_forms() -> None:
    redact.register('a<b&"c\\d\n')
    once = redact.redact('x a<b&"c\\d\n y a&lt;b&amp;&quot;c\\d y a<b&"c\\d.')
    assert once == "x [REDACTED] y [REDACTED] y [REDACTED]."
    assert redact.redact(once) == once


def test_one_character_secrets_are_redacted_everywhere_but_whitespace_ones_are_not() -> None:
    redact.register("E")
    redact.register(" ")
    assert redact.redact("ERROR: E") == "[REDACTED]RROR: [REDACTED]"
    assert redact.redact(redact.redact("E")) == "[REDACTED]", "the replacement itself is never redacted again"
    assert feed_all(["x [RED", "ACTED] E"]) == "x [REDACTED] [REDACTED]", "nor when it comes in pieces"


def feed_all(pieces: list[str]) -> str:
    stream = redact.StreamRedactor()
    return "".join(stream.feed(p) for p in pieces) + stream.close()


def test_a_stream_redactor_catches_a_secret_split_across_writes() -> None:
    redact.register("hunter2")
    assert feed_all(["pw=hun", "ter2!"]) == "pw=[REDACTED]!"
    assert feed_all(list("pw=hunter2 and hunter2")) == "pw=[REDACTED] and [REDACTED]"
    assert feed_all(["hunhun", "ter2"]) == "hun[REDACTED]", "a false start is shown once it cannot match"
    assert feed_all(["hun", "ch"]) == "hunch"
    stream = redact.StreamRedactor()
    assert stream.feed("say hunt") == "say ", "a possible start is held back"
    assert stream.pending
    assert stream.close() == "hunt", "and shown as it is at the end"


def test_a_stream_redactor_prefers_the_longer_secret_and_never_cuts_one() -> None:
    redact.register("abcd")
    redact.register("dxy")
    redact.register("abc")
    redact.register("abcdef")
    assert feed_all(["abcd"]) == "[REDACTED]"
    assert feed_all(["abcde", "f"]) == "[REDACTED]"
    assert feed_all(["abcde", "g"]) == "[REDACTED]eg"
    assert feed_all(["zz abc", "d", "xy"]) == "zz [REDACTED]xy"


def test_task_values_are_redacted_inside_structures_keys_and_numbers() -> None:
    redact.register("s3cr3t")
    redact.register("4242")
    value = {"s3cr3t": ["user:s3cr3t", 4242, 1, True, None, {"n": 142420}]}
    assert redact.redact_value(value) == {
        "[REDACTED]": ["user:[REDACTED]", "[REDACTED]", 1, True, None, {"n": "1[REDACTED]0"}]
    }


SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")   # holds the original sys.stderr
named = logging.getLogger("app")
named.addHandler(logging.StreamHandler(sys.stdout))
named.propagate = False
print("before: plain-s3cret")                                    # not registered yet: printed as is
from sluice.runtime import redact
redact.register("plain-s3cret")
print("after:", "plain-s3cret")
sys.stdout.write("write plain-s3cret\\n")
sys.stdout.writelines(["lines plain-s3cret\\n"])
logging.info("root logger plain-s3cret")
named.info("named logger plain-s3cret")
sys.stderr.write("stderr plain-s3cret\\n")
print(type(sys.stdout).__name__, sys.stdout.encoding, sys.__stdout__ is sys.stdout)
sys.stdout.write("split plain-s"); sys.stdout.flush(); sys.stdout.write("3cret\\n")
sys.stdout.write("held plain-s3")  # a possible start of the secret: written at exit
"""


def test_install_streams_redacts_prints_writes_and_existing_logging_handlers(tmp_path: Path) -> None:
    script = tmp_path / "task.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "before: plain-s3cret",
        "after: [REDACTED]",
        "write [REDACTED]",
        "lines [REDACTED]",
        "named logger [REDACTED]",
        "RedactingStream utf-8 True",
        "split [REDACTED]",
        "held plain-s3",
    ]
    assert done.stderr.splitlines() == ["root logger [REDACTED]", "stderr [REDACTED]"]


def test_importing_the_runtime_parts_stays_cheap() -> None:
    code = (
        "import sys; before = set(sys.modules); "
        "from sluice.runtime import dbutils; dbutils.fs; dbutils.secrets; "
        "import sluice.runtime.redact, sluice.runtime.display, sluice.runtime.paths; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert {"sluice.runtime.fs", "sluice.runtime.secrets", "sluice.runtime.redact"} <= loaded
    heavy = {"typing", "dataclasses", "sqlite3", "cryptography", "sluice.store.db", "IPython", "pandas"}
    assert loaded & heavy == set()
