"""Which server remote mode calls: profiles of ~/.databrickscfg, SLUICE_HOST, and what is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.cli import remote
from sluice.cli.common import EXIT_INVALID, RemoteError

CFG = """
[DEFAULT]
host = https://adb-1.azuredatabricks.net
token = dapi-real

[dev]
host = http://127.0.0.1:8080/
token = dapi-dev

[oauth]
host = http://127.0.0.1:8080
auth_type = databricks-cli

[nohost]
token = dapi-x

[bare]
host = sluice.internal:8080
token = dapi-y
"""


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "databrickscfg"
    path.write_text(CFG)
    monkeypatch.setenv(remote.CONFIG_FILE_ENV, str(path))
    for name in (remote.HOST_ENV, remote.TOKEN_ENV, remote.PROFILE_ENV):
        monkeypatch.delenv(name, raising=False)
    return path


def test_local_mode_unless_asked(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-real")
    assert remote.target() is None, "DATABRICKS_* and the DEFAULT profile are never used implicitly"


def test_profile_by_flag_or_env_wins_over_sluice_host(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = remote.target("dev")
    assert found == remote.Target("http://127.0.0.1:8080", "dapi-dev", f"profile [dev] of {cfg}")
    monkeypatch.setenv(remote.HOST_ENV, "http://elsewhere:1")
    monkeypatch.setenv(remote.PROFILE_ENV, "dev")
    env_profile = remote.target()
    assert env_profile is not None
    assert env_profile.host == "http://127.0.0.1:8080"
    assert remote.target("DEFAULT") == remote.Target(
        "https://adb-1.azuredatabricks.net", "dapi-real", f"profile [DEFAULT] of {cfg}"
    ), "DEFAULT is an ordinary profile when named; it is not inherited by the others"


def test_sluice_host_and_token(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(remote.HOST_ENV, "https://sluice.internal/")
    monkeypatch.setenv(remote.TOKEN_ENV, "dapi-t")
    assert remote.target() == remote.Target("https://sluice.internal", "dapi-t", "SLUICE_HOST")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "has no profile [nope] (its profiles: DEFAULT, dev, oauth, nohost, bare)"),
        ("oauth", "has no token (auth_type databricks-cli): Sluice servers take personal access tokens"),
        ("nohost", "has no host = http://HOST:PORT line"),
        ("bare", "host 'sluice.internal:8080' has no scheme; write it as http://sluice.internal:8080"),
    ],
)
def test_bad_profiles_are_refused_with_the_fix(cfg: Path, name: str, message: str) -> None:
    with pytest.raises(RemoteError, match=re.escape(message)) as caught:
        remote.target(name)
    assert caught.value.exit_code == EXIT_INVALID


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(remote.CONFIG_FILE_ENV, str(tmp_path / "none"))
    with pytest.raises(RemoteError, match="none does not exist; create it with a \\[dev\\] section"):
        remote.target("dev")


def test_local_only_commands_refuse_remote_mode(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote.local_only("runs logs")  # local mode: fine
    monkeypatch.setenv(remote.HOST_ENV, "http://127.0.0.1:1")
    with pytest.raises(
        RemoteError, match="`sluice runs logs` works on the local store only, and SLUICE_HOST"
    ):
        remote.local_only("runs logs")
