"""Auth off is for loopback only: which hosts count, and the setting's sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import SluiceError
from sluice.server.local import LocalOnly, is_loopback, refusal
from sluice.settings import Settings


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST.", "a.localhost"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert refusal(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.4", "example.com", "localhost.example.com", ""])
def test_other_hosts_are_refused_with_the_fix(host: str) -> None:
    assert not is_loopback(host)
    why = refusal(host)
    assert why is not None
    assert "--host 127.0.0.1" in why
    assert "sluice tokens create" in why


def _scope(host: str, method: str = "GET", origin: str | None = None) -> dict[str, object]:
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
    return {"type": "http", "method": method, "headers": headers}


def test_local_only_lets_this_machine_through_and_nothing_else() -> None:
    assert LocalOnly.problem(_scope("127.0.0.1:8080")) is None
    assert LocalOnly.problem(_scope("[::1]:8080", "POST", "http://[::1]:8080")) is None
    assert LocalOnly.problem(_scope("localhost:8080", "POST")) is None  # curl, the SDK: no Origin
    assert LocalOnly.problem(_scope("attacker.example:8080")) is not None
    assert LocalOnly.problem(_scope("127.0.0.1:8080", "POST", "http://attacker.example")) is not None
    assert LocalOnly.problem(_scope("127.0.0.1:8080", "POST", "null")) is not None
    assert LocalOnly.problem(_scope("127.0.0.1:8080", "GET", "http://attacker.example")) is None


def test_auth_setting_from_env_and_file(tmp_path: Path) -> None:
    home = {"SLUICE_HOME": str(tmp_path)}
    assert Settings.from_env(environ=home).auth is True
    assert Settings.from_env(environ={**home, "SLUICE_AUTH": "false"}).auth is False
    (tmp_path / "sluice.toml").write_text("[server]\nauth = false\n")
    assert Settings.from_env(environ=home).auth is False
    with pytest.raises(SluiceError, match="SLUICE_AUTH"):
        Settings.from_env(environ={**home, "SLUICE_AUTH": "maybe"})
