"""The cache of validated job files: used only while every recorded input is unchanged."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sluice.errors import InvalidJobError
from sluice.spec import cache

JOB = """\
name: one
tasks:
  - task_key: a
    spark_python_task:
      python_file: a.py
"""

BUNDLE = """\
bundle:
  name: b
include:
  - resources/*.yml
variables:
  env:
    default: dev
"""

RESOURCE = """\
resources:
  jobs:
    {key}:
      name: {key}-${{var.env}}
      tasks:
        - task_key: t
          spark_python_task:
            python_file: ../t.py
"""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("SLUICE_CACHE_DIR", str(directory))
    for name in ("a.py", "t.py"):  # the scripts the jobs name (validation checks that they exist)
        (tmp_path / name).write_text("print('hi')\n")
    return directory


def _touch_later(path: Path, text: str) -> None:
    """Rewrite ``path`` with a modification time certainly different from before."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_a_hit_returns_the_same_jobs_without_loading_again(tmp_path: Path, cache_dir: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    first = cache.load_validated(job)
    assert len(list(cache_dir.iterdir())) == 1
    second = cache.load_validated(job)
    assert first == second
    assert second[0].settings["name"] == "one"
    assert second[0].settings["tasks"][0]["spark_python_task"]["python_file"] == str(tmp_path / "a.py")


def test_an_edit_is_seen(tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    cache.load_validated(job)
    _touch_later(job, JOB.replace("name: one", "name: two"))
    assert cache.load_validated(job)[0].settings["name"] == "two"


def test_an_edit_that_keeps_size_and_modification_time_is_seen(tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    stamp = job.stat().st_mtime_ns
    cache.load_validated(job)
    job.write_text(JOB.replace("name: one", "name: two"))
    os.utime(job, ns=(stamp, stamp))
    assert cache.load_validated(job)[0].settings["name"] == "two"


def test_a_rewrite_with_the_same_bytes_still_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    cache.load_validated(job)
    _touch_later(job, JOB)

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the job was loaded again")

    monkeypatch.setattr("sluice.spec.validate.load_and_validate", no_load)
    assert cache.load_validated(job)[0].settings["name"] == "one"


def test_an_edit_that_breaks_the_job_is_reported(tmp_path: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    cache.load_validated(job)
    _touch_later(job, JOB.replace("task_key: a", "task_key: a\n    depends_on: [{task_key: nope}]"))
    with pytest.raises(InvalidJobError, match="nope"):
        cache.load_validated(job)


def test_bundle_inputs_are_all_tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "databricks.yml").write_text(BUNDLE)
    (tmp_path / "resources" / "x.yml").write_text(RESOURCE.format(key="x"))
    assert [j.key for j in cache.load_validated(tmp_path)] == ["x"]
    # a new file matching an include glob
    (tmp_path / "resources" / "y.yml").write_text(RESOURCE.format(key="y"))
    assert sorted(j.key for j in cache.load_validated(tmp_path)) == ["x", "y"]
    # an edit of an included file
    _touch_later(tmp_path / "resources" / "y.yml", RESOURCE.format(key="z"))
    assert sorted(j.key for j in cache.load_validated(tmp_path)) == ["x", "z"]
    # --var and BUNDLE_VAR_* are part of the key
    assert cache.load_validated(tmp_path, variables={"env": "prod"})[0].settings["name"] == "x-prod"
    monkeypatch.setenv("BUNDLE_VAR_env", "test")
    assert cache.load_validated(tmp_path)[0].settings["name"] == "x-test"


def test_off_disables_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_CACHE_DIR", "off")
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    assert cache.load_validated(job)[0].key == "job"
    assert not (tmp_path / "cache").exists()


def test_a_damaged_entry_is_ignored(tmp_path: Path, cache_dir: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    cache.load_validated(job)
    for entry in cache_dir.iterdir():
        entry.write_text("{not json")
    assert cache.load_validated(job)[0].settings["name"] == "one"


def test_a_hit_imports_neither_pydantic_nor_yaml(tmp_path: Path, cache_dir: Path) -> None:
    job = tmp_path / "job.yml"
    job.write_text(JOB)
    cache.load_validated(job)
    code = (
        "import sys\nfrom pathlib import Path\nfrom sluice.spec.cache import load_validated\n"
        f"load_validated(Path({str(job)!r}))\n"
        "print(sorted(m for m in ('pydantic', 'yaml', 'sqlalchemy') if m in sys.modules))\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(code)
    import subprocess

    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SLUICE_CACHE_DIR": str(cache_dir)},
    )
    assert out.stdout.strip() == "[]"


def test_a_deleted_task_file_and_a_new_commit_are_seen(tmp_path: Path) -> None:
    import subprocess

    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "databricks.yml").write_text(
        "bundle: {name: b}\nresources:\n  jobs:\n    j:\n      tags: {commit: '${bundle.git.commit}'}\n"
        "      tasks: [{task_key: t, spark_python_task: {python_file: ./t.py}}]\n"
    )
    (bundle / "t.py").write_text("print('t')\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env["GIT_COMMITTER_EMAIL"] = "a@x"

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=bundle, env=env, check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "one")
    (job,) = cache.load_validated(bundle)
    assert job.settings["tags"]["commit"] == git("rev-parse", "HEAD").strip()
    git("commit", "-q", "--allow-empty", "-m", "two")
    (job,) = cache.load_validated(bundle)
    assert job.settings["tags"]["commit"] == git("rev-parse", "HEAD").strip()
    (bundle / "t.py").unlink()
    with pytest.raises(InvalidJobError, match=r"python_file .* not found"):
        cache.load_validated(bundle)
