"""Secrets: the encrypted store on SQLite and PostgreSQL, dbutils.secrets, and the `sluice secrets` CLI."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sluice.errors import ConflictError, InvalidRequestError, NotFoundError
from sluice.runtime import redact
from sluice.runtime.secrets import SecretMetadata, SecretScope, SecretsUtil
from sluice.store.secrets import KEY_ENV, KEY_FILE, SecretsKeyError, SecretStore, new_key_text
from sluice.store.testing import postgres_schema, require_postgres

NOW = 1_764_000_000_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'sluice.db'}"
    else:
        with postgres_schema(require_postgres()) as url:
            yield url


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(KEY_ENV, raising=False)
    return tmp_path / "home"


@pytest.fixture
def store(store_url: str, home: Path) -> Iterator[SecretStore]:
    with SecretStore.open(store_url, home) as opened:
        yield opened


def raw_rows(url: str) -> list[tuple[str, str, str, str]]:
    sql = "SELECT scope, key, value, key_id FROM secrets ORDER BY scope, key"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return list(conn.execute(sql).fetchall())
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def test_scopes_and_secrets_round_trip_encrypted(store: SecretStore, store_url: str, home: Path) -> None:
    store.create_scope("prod-db", NOW)
    store.create_scope("api.keys", NOW + 1)
    store.put("prod-db", "password", "pä$$word-123".encode(), NOW + 2)
    store.put("prod-db", "cert", bytes(range(256)), NOW + 3)
    assert store.get("prod-db", "password") == "pä$$word-123".encode()
    assert store.get("prod-db", "cert") == bytes(range(256))
    assert [s.name for s in store.list_scopes()] == ["api.keys", "prod-db"]
    assert [(s.key, s.last_updated_timestamp) for s in store.list_secrets("prod-db")] == [
        ("cert", NOW + 3),
        ("password", NOW + 2),
    ]
    # at rest: neither the value nor the key is in the database
    key_file = home / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    rows = raw_rows(store_url)
    assert len(rows) == 2
    for _scope, _key, value, key_id in rows:
        assert "word-123" not in value
        assert key_id == store.key().key_id
    assert key_file.read_text().strip() not in str(rows)
    # replace keeps one row
    store.put("prod-db", "password", b"new", NOW + 4)
    assert store.get("prod-db", "password") == b"new"
    assert len(raw_rows(store_url)) == 2


def test_errors_name_the_scope_key_and_fix(store: SecretStore) -> None:
    with pytest.raises(
        NotFoundError, match=r"Scope nope does not exist; create it with `sluice secrets create-scope"
    ):
        store.get("nope", "k")
    with pytest.raises(NotFoundError, match="Scope nope does not exist"):
        store.put("nope", "k", b"v", NOW)
    store.create_scope("s", NOW)
    with pytest.raises(ConflictError, match="Scope s already exists"):
        store.create_scope("s", NOW)
    with pytest.raises(NotFoundError, match="Secret does not exist with scope: s and key: k"):
        store.get("s", "k")
    with pytest.raises(InvalidRequestError, match=r"Scope name 'bad name' is invalid"):
        store.create_scope("bad name", NOW)
    with pytest.raises(InvalidRequestError, match=r"Secret key name 'a/b' is invalid"):
        store.put("s", "a/b", b"v", NOW)
    with pytest.raises(InvalidRequestError, match=r"the limit is 131,072 bytes"):
        store.put("s", "big", b"x" * (128 * 1024 + 1), NOW)
    with pytest.raises(NotFoundError, match="Secret does not exist with scope: s and key: k"):
        store.delete_secret("s", "k")


def test_delete_secret_and_scope(store: SecretStore, store_url: str) -> None:
    store.create_scope("s", NOW)
    store.put("s", "a", b"1", NOW)
    store.put("s", "b", b"2", NOW)
    store.delete_secret("s", "a")
    assert [s.key for s in store.list_secrets("s")] == ["b"]
    store.delete_scope("s")
    assert store.list_scopes() == []
    assert raw_rows(store_url) == []
    with pytest.raises(NotFoundError):
        store.delete_scope("s")


def test_a_tampered_or_moved_value_and_a_wrong_key_are_refused(
    store: SecretStore, store_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_scope("s", NOW)
    store.put("s", "a", b"alpha", NOW)
    store.put("s", "b", b"beta", NOW)
    value_a = next(r[2] for r in raw_rows(store_url) if r[1] == "a")
    store._db.execute("UPDATE secrets SET value = :v WHERE key = 'b'", {"v": value_a})
    with pytest.raises(SecretsKeyError, match=r"Secret s/b does not decrypt .* altered or moved"):
        store.get("s", "b")
    monkeypatch.setenv(KEY_ENV, new_key_text())
    with (
        SecretStore.open(store_url, home) as other,
        pytest.raises(SecretsKeyError, match=r"was encrypted with key [0-9a-f]{16}, but the key in use"),
    ):
        other.get("s", "a")


def test_the_key_can_come_from_the_environment(
    store_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, new_key_text())
    with SecretStore.open(store_url, home) as store:
        store.create_scope("s", NOW)
        store.put("s", "a", b"alpha", NOW)
        assert store.get("s", "a") == b"alpha"
    assert not (home / KEY_FILE).exists()
    monkeypatch.setenv(KEY_ENV, "too-short")
    with (
        SecretStore.open(store_url, home) as store,
        pytest.raises(SecretsKeyError, match=f"{KEY_ENV} does not hold a secrets key"),
    ):
        store.get("s", "a")


def test_an_exposed_or_missing_key_file_is_refused(store: SecretStore, home: Path) -> None:
    store.create_scope("s", NOW)
    with pytest.raises(SecretsKeyError, match=r"No secrets key: .*secrets.key does not exist"):
        store.key()
    store.put("s", "a", b"alpha", NOW)
    os.chmod(home / KEY_FILE, 0o644)
    with SecretStore(store._db, home) as fresh, pytest.raises(SecretsKeyError, match=r"mode 644.*chmod 600"):
        fresh.get("s", "a")


# -- dbutils.secrets ------------------------------------------------------------------------------------


def test_dbutils_secrets_reads_the_store_of_the_environment(
    store_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this test's own redaction registry, installing no hook into pytest's streams
    monkeypatch.setattr(redact, "_values", set())
    monkeypatch.setattr(redact, "_pattern", None)
    monkeypatch.setattr(redact, "_ipython_installed", True)
    with SecretStore.open(store_url, home) as store:
        store.create_scope("prod", NOW)
        store.put("prod", "token", b"tok-9f8e7d6c", NOW)
        store.put("prod", "blob", b"\xff\x00", NOW)
    monkeypatch.setenv("SLUICE_HOME", str(home))
    if store_url.startswith("postgresql"):
        monkeypatch.setenv("SLUICE_DATABASE_URL", store_url)
    else:
        monkeypatch.delenv("SLUICE_DATABASE_URL", raising=False)
    secrets = SecretsUtil()
    try:
        assert secrets.listScopes() == [SecretScope("prod")]
        assert secrets.listScopes()[0].getName() == "prod"
        assert secrets.list("prod") == [SecretMetadata("blob"), SecretMetadata("token")]
        assert secrets.get("prod", "token") == "tok-9f8e7d6c"
        assert secrets.getBytes("prod", "blob") == b"\xff\x00"
        with pytest.raises(ValueError, match=r"not UTF-8 text; read it with dbutils.secrets.getBytes"):
            secrets.get("prod", "blob")
        with pytest.raises(NotFoundError, match="Secret does not exist with scope: prod and key: nope"):
            secrets.get("prod", "nope")
        with pytest.raises(TypeError, match="scope must be a string"):
            secrets.get(1, "x")  # type: ignore[arg-type]
        assert redact.redact("token=tok-9f8e7d6c") == "token=[REDACTED]"
    finally:
        secrets.close()


# -- the CLI --------------------------------------------------------------------------------------------


def sluice(
    home: Path, *args: str, stdin: bytes | None = None, url: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(home)
    if url is not None and url.startswith("postgresql"):
        env["SLUICE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "secrets", *args],
        env=env,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_manages_scopes_and_secrets(store_url: str, home: Path, tmp_path: Path) -> None:
    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return sluice(home, *args, stdin=stdin, url=store_url)

    assert run("create-scope", "etl").returncode == 0
    done = run("create-scope", "etl")
    assert done.returncode == 1
    assert b"Scope etl already exists" in done.stderr
    assert run("put-secret", "etl", "password", "--string-value", "hunter2-x").returncode == 0
    assert run("put-secret", "etl", "from-stdin", stdin=b"piped-value\n").returncode == 0
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"-----BEGIN-----\nabc\n")
    assert run("put", "etl", "cert", "--from-file", str(cert)).returncode == 0
    raw = base64.b64encode(b"\x01\x02").decode()
    assert run("put-secret", "etl", "bin", "--bytes-value", raw).returncode == 0
    done = run("put-secret", "etl", "x", "--string-value", "a", "--from-file", str(cert))
    assert done.returncode == 2
    assert b"at most one of" in done.stderr
    done = run("put-secret", "nope", "x", "--string-value", "a")
    assert done.returncode == 2
    assert b"Scope nope does not exist; create it with" in done.stderr

    listed = run("list-secrets", "etl", "-o", "json")
    assert listed.returncode == 0
    assert b"hunter2" not in listed.stdout
    import json

    keys = [s["key"] for s in json.loads(listed.stdout)["secrets"]]
    assert keys == ["bin", "cert", "from-stdin", "password"]
    assert json.loads(run("list", "-o", "json").stdout) == {
        "scopes": [{"name": "etl", "backend_type": "DATABRICKS"}]
    }
    assert b"password" in run("list", "etl").stdout

    with SecretStore.open(store_url, home) as store:
        assert store.get("etl", "password") == b"hunter2-x"
        assert store.get("etl", "from-stdin") == b"piped-value"
        assert store.get("etl", "cert") == b"-----BEGIN-----\nabc\n"
        assert store.get("etl", "bin") == b"\x01\x02"

    assert run("delete-secret", "etl", "bin").returncode == 0
    assert run("delete", "etl", "cert").returncode == 0
    assert json.loads(run("list-secrets", "etl", "-o", "json").stdout)["secrets"][0]["key"] == "from-stdin"
    assert run("delete", "etl").returncode == 0
    assert json.loads(run("list-scopes", "-o", "json").stdout) == {"scopes": []}
