"""Fixtures for the sessiond interoperability tests.

These tests drive the real `sessiond` binary with real third-party SOAP clients
(Python zeep, PHP SoapClient). Nothing here talks to the Rust code directly:

* every test gets a fresh database (SQLite file in a temp dir by default;
  a fresh PostgreSQL database when SESSIOND_TEST_BACKEND=postgres),
* users are created through the CLI (`sessiond user add/grant`) before serving,
* `sessiond serve` is started on 127.0.0.1:0 and the port is read from its log.

Environment:
  SESSIOND_BIN            path of the binary (default: <repo>/target/debug/sessiond)
  SESSIOND_TEST_BACKEND   sqlite (default) or postgres
  SESSIOND_TEST_PG        PostgreSQL server for the postgres backend, a URL without a
                          database where the tests may create databases (default
                          postgres://postgres@127.0.0.1:5432; the API tests read it too)
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "sessiond"
SERVICE_PATH = "/services/SessionService"
# http, or https when SESSIOND_TLS_CERT/SESSIOND_TLS_KEY are set.
LISTENING_RE = re.compile(r"listening on (https?)://([\d.]+):(\d+)")
START_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0


def sessiond_bin() -> Path:
    """The binary under test: $SESSIOND_BIN, else <repo>/target/debug/sessiond."""
    env = os.environ.get("SESSIOND_BIN")
    return Path(env) if env else DEFAULT_BIN


def _child_env(database_url: str, **extra: str) -> dict:
    """Environment for a sessiond process.

    SESSIOND_* variables of the calling environment (SESSIOND_BIN,
    SESSIOND_TEST_BACKEND, a developer's own settings...) are removed so that
    the server sees exactly the settings the test chose.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
    env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


# --------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------

def _pg_server() -> str:
    return os.environ.get("SESSIOND_TEST_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def _psql(sql: str) -> None:
    proc = subprocess.run(
        ["psql", f"{_pg_server()}/postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed ({proc.returncode}): {proc.stderr.strip()}")


@contextlib.contextmanager
def database_url(tmp_dir: Path) -> Iterator[str]:
    """A database URL for one test, cleaned up afterwards.

    Default: sqlite:///<tmp_dir>/sessiond.db. With SESSIOND_TEST_BACKEND=postgres a
    fresh database is created with psql and dropped when the context exits.
    """
    backend = os.environ.get("SESSIOND_TEST_BACKEND", "sqlite").lower()
    if backend == "sqlite":
        yield f"sqlite://{(tmp_dir / 'sessiond.db').resolve()}"
    elif backend in ("postgres", "postgresql"):
        name = "sessiond_it_" + uuid.uuid4().hex[:16]
        _psql(f"CREATE DATABASE {name}")
        try:
            yield f"{_pg_server()}/{name}"
        finally:
            _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        raise RuntimeError(f"SESSIOND_TEST_BACKEND={backend!r}: expected sqlite or postgres")


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

class SessiondServer:
    """One running `sessiond serve` process."""

    def __init__(self, proc: subprocess.Popen, log_path: Path, host: str, port: int,
                 session_timeout: str, scheme: str = "http"):
        self.proc = proc
        self.log_path = log_path
        self.host = host
        self.port = port
        self.session_timeout = session_timeout
        self.base_url = f"{scheme}://{host}:{port}"
        self.endpoint = self.base_url + SERVICE_PATH
        self.wsdl11 = self.endpoint + "?wsdl"
        self.wsdl12 = self.endpoint + "?wsdl=soap12"
        self.stopped = False
        self.exit_code: Optional[int] = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as exc:  # pragma: no cover
            return f"<cannot read {self.log_path}: {exc}>"

    def assert_running(self) -> None:
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError(f"sessiond exited unexpectedly with code {rc}\n{self.log()}")

    def stop(self) -> Optional[int]:
        if self.stopped:
            return self.exit_code
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.exit_code = self.proc.returncode
        return self.exit_code


class SessiondInstance:
    """A database plus helpers to add users and start servers on it (one per test)."""

    def __init__(self, tmp_dir: Path, db_url: str, default_timeout: str):
        self.tmp_dir = tmp_dir
        self.database_url = db_url
        self.default_timeout = default_timeout
        self.bin = sessiond_bin()
        self.servers: list[SessiondServer] = []

    # -- CLI -----------------------------------------------------------------
    def cli(self, args: Sequence[str], stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.bin), *args], input=stdin, capture_output=True, text=True,
            env=_child_env(self.database_url), cwd=self.tmp_dir, timeout=CLI_TIMEOUT,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"`sessiond {' '.join(args)}` exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def add_user(self, user: str, password: str = "secret-pw", department: Optional[str] = None,
                 rights: Sequence[str] = ()) -> None:
        args = ["user", "add", user, "--password-stdin"]
        if department is not None:
            args += ["--department", department]
        self.cli(args, stdin=password + "\n")
        for right in rights:
            self.grant(user, right)

    def grant(self, user: str, right: str) -> None:
        self.cli(["user", "grant", user, right])

    # -- serve ---------------------------------------------------------------
    def serve(self, session_timeout: Optional[str] = None, **extra_env: str) -> SessiondServer:
        timeout = session_timeout or self.default_timeout
        n = len(self.servers)
        log_path = self.tmp_dir / f"sessiond-serve-{n}.log"
        env = _child_env(
            self.database_url,
            SESSIOND_BIND="127.0.0.1:0",
            SESSIOND_SESSION_TIMEOUT=timeout,
            RUST_LOG=os.environ.get("RUST_LOG", "info"),
            **extra_env,
        )
        logf = open(log_path, "wb")
        try:
            proc = subprocess.Popen([str(self.bin), "serve"], env=env, cwd=self.tmp_dir,
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        finally:
            logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        match = None
        while time.monotonic() < deadline:
            match = LISTENING_RE.search(log_path.read_text(errors="replace"))
            if match or proc.poll() is not None:
                break
            time.sleep(0.05)
        if not match:
            # Give the log a last look (the line may have come with the exit).
            match = LISTENING_RE.search(log_path.read_text(errors="replace"))
        if not match:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise AssertionError(
                f"sessiond serve did not log 'listening on http(s)://HOST:PORT' within "
                f"{START_TIMEOUT:.0f}s (exit code {proc.returncode})\n"
                f"{log_path.read_text(errors='replace')}")
        server = SessiondServer(proc, log_path, match.group(2), int(match.group(3)), timeout,
                                scheme=match.group(1))
        self.servers.append(server)
        return server

    def stop_all(self) -> list[tuple[SessiondServer, Optional[int], bool]]:
        out = []
        for s in self.servers:
            was_running = s.proc.poll() is None or s.stopped
            out.append((s, s.stop(), was_running))
        return out


@pytest.fixture
def session_timeout() -> str:
    """Default SESSIOND_SESSION_TIMEOUT; override with
    @pytest.mark.parametrize("session_timeout", ["2s"]) or pass it to serve()."""
    return "30m"


@pytest.fixture
def sessiond(request, tmp_path, session_timeout) -> Iterator[SessiondInstance]:
    """A fresh database and a handle to add users and start `sessiond serve` on it.

    Usage:
        sessiond.add_user("alice", "secret-pw", rights=["ViewSessionRight"])
        server = sessiond.serve()            # or serve(session_timeout="2s")
        server.endpoint / server.wsdl11 / server.wsdl12
    """
    binary = sessiond_bin()
    if not binary.exists():
        pytest.fail(f"sessiond binary not found at {binary} (build it, or set SESSIOND_BIN)",
                    pytrace=False)
    with database_url(tmp_path) as url:
        inst = SessiondInstance(tmp_path, url, session_timeout)
        request.node._sessiond_instance = inst
        try:
            yield inst
        finally:
            results = inst.stop_all()
        crashed = [(s, rc) for s, rc, was_running in results if not was_running]
        if crashed:
            s, rc = crashed[0]
            pytest.fail(f"sessiond serve exited by itself during the test (code {rc})\n{s.log()}",
                        pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach each server's log (stderr) to the report of a failed test."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        inst = getattr(item, "_sessiond_instance", None)
        if inst is not None:
            for i, s in enumerate(inst.servers):
                rep.sections.append((f"sessiond serve #{i} log ({s.log_path})", s.log()))
