"""Settings: environment variables over the TOML file over defaults; errors name the setting and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.errors import SluiceError
from sluice.settings import Settings


def test_defaults_without_a_file(tmp_path: Path) -> None:
    s = Settings.from_env(environ={"SLUICE_HOME": str(tmp_path)})
    assert (s.home, s.database_url, s.server_host, s.server_port, s.config_file) == (
        tmp_path,
        None,
        "127.0.0.1",
        8080,
        None,
    )
    assert s.smtp.host is None
    assert s.parallelism >= 1


def test_environment_wins_over_the_home_file(tmp_path: Path) -> None:
    (tmp_path / "sluice.toml").write_text(
        'database_url = "postgresql://me@db/x"\nparallelism = 3\n'
        '[server]\nhost = "0.0.0.0"\nport = 9000\n'
        '[smtp]\nhost = "mail"\ntls = "ssl"\nuser = "u"\npassword = "hunter2-secret"\n'
    )
    s = Settings.from_env(environ={"SLUICE_HOME": str(tmp_path), "SLUICE_SERVER_PORT": "9100"})
    assert s.config_file == tmp_path / "sluice.toml"
    assert (s.database_url, s.parallelism, s.server_host, s.server_port) == (
        "postgresql://me@db/x",
        3,
        "0.0.0.0",
        9100,
    )
    assert (s.smtp.host, s.smtp.port, s.smtp.tls, s.smtp.user, s.smtp.password) == (
        "mail",
        465,
        "ssl",
        "u",
        "hunter2-secret",
    )
    assert "hunter2" not in repr(s.smtp), "the password is not printed"


def test_a_named_file_must_exist_and_be_valid(tmp_path: Path) -> None:
    env = {"SLUICE_HOME": str(tmp_path)}
    with pytest.raises(SluiceError, match="does not exist"):
        Settings.from_env(tmp_path / "nope.toml", environ=env)
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(SluiceError, match="is not valid TOML"):
        Settings.from_env(environ={**env, "SLUICE_CONFIG": str(bad)})
    bad.write_text("[server]\nport = 'eighty'\n")
    with pytest.raises(SluiceError, match=r"server.port='eighty' is not a whole number"):
        Settings.from_env(bad, environ=env)
    with pytest.raises(
        SluiceError, match=r"SLUICE_PARALLELISM='x' is not a whole number; set it to e\.g\. 4"
    ):
        Settings.from_env(environ={**env, "SLUICE_PARALLELISM": "x"})
    with pytest.raises(SluiceError, match="SLUICE_SMTP_TLS='tls' is not one of none, starttls, ssl"):
        Settings.from_env(environ={**env, "SLUICE_SMTP_TLS": "tls"})


def test_allow_local_git_sources_is_a_flag(tmp_path: Path) -> None:
    env = {"SLUICE_HOME": str(tmp_path)}
    assert Settings.from_env(environ=env).allow_local_git_sources is True
    (tmp_path / "sluice.toml").write_text("[server]\nallow_local_git_sources = false\n")
    assert Settings.from_env(environ=env).allow_local_git_sources is False
    on = Settings.from_env(environ={**env, "SLUICE_ALLOW_LOCAL_GIT_SOURCES": "yes"})
    assert on.allow_local_git_sources is True
    with pytest.raises(
        SluiceError, match=r"SLUICE_ALLOW_LOCAL_GIT_SOURCES='maybe' is not true or false; set it to true"
    ):
        Settings.from_env(environ={**env, "SLUICE_ALLOW_LOCAL_GIT_SOURCES": "maybe"})


def test_limits_default_to_10_mib_and_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    env = {"SLUICE_HOME": str(tmp_path)}
    s = Settings.from_env(environ=env)
    assert (s.max_request_body_bytes, s.max_log_bytes) == (10 * 1024 * 1024, 10 * 1024 * 1024)
    (tmp_path / "sluice.toml").write_text(
        "[server]\nmax_request_body_bytes = 2048\n[tasks]\nmax_log_bytes = 0\n"
    )
    s = Settings.from_env(environ=env)
    assert (s.max_request_body_bytes, s.max_log_bytes) == (2048, 0)
    s = Settings.from_env(environ={**env, "SLUICE_MAX_LOG_BYTES": "65536"})
    assert s.max_log_bytes == 65536
    with pytest.raises(SluiceError, match="SLUICE_MAX_REQUEST_BODY_BYTES must be at least 1"):
        Settings.from_env(environ={**env, "SLUICE_MAX_REQUEST_BODY_BYTES": "-3"})
    with pytest.raises(SluiceError, match="SLUICE_MAX_LOG_BYTES must be 0 \\(no cap\\) or a number of bytes"):
        Settings.from_env(environ={**env, "SLUICE_MAX_LOG_BYTES": "-1"})


def test_git_timeout_from_the_file_or_the_environment(tmp_path: Path) -> None:
    assert Settings.from_env(environ={"SLUICE_HOME": str(tmp_path)}).git_timeout == 300
    (tmp_path / "sluice.toml").write_text("git_timeout = 45\n")
    assert Settings.from_env(environ={"SLUICE_HOME": str(tmp_path)}).git_timeout == 45
    env = {"SLUICE_HOME": str(tmp_path), "SLUICE_GIT_TIMEOUT": "7"}
    assert Settings.from_env(environ=env).git_timeout == 7
    with pytest.raises(SluiceError, match="SLUICE_GIT_TIMEOUT must be at least 1"):
        Settings.from_env(environ={**env, "SLUICE_GIT_TIMEOUT": "0"})
    with pytest.raises(SluiceError, match=r"SLUICE_GIT_TIMEOUT='soon' is not a whole number"):
        Settings.from_env(environ={**env, "SLUICE_GIT_TIMEOUT": "soon"})
