"""Fixtures: the real `sessiond` binary, serving on a free port with its own SQLite file.

The binary is $SESSIOND_BIN, else `debug/sessiond` in cargo's target directory, built first with
`cargo build` (a no-op when it is up to date). Users are made with the CLI before serving, as
an operator would (`sessiond user add U --password-stdin`, `sessiond user grant U RIGHT`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
LISTENING_RE = re.compile(r"listening on (https?://[\d.]+:\d+/\S*)")
START_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0
PASSWORD = "secret-pw"


def _find_binary() -> Path:
    env = os.environ.get("SESSIOND_BIN")
    if env:
        return Path(env)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120,
    )
    target = Path(json.loads(meta.stdout)["target_directory"])
    subprocess.run(["cargo", "build", "--bin", "sessiond"], cwd=REPO_ROOT, check=True)
    return target / "debug" / "sessiond"


@pytest.fixture(scope="session")
def sessiond_bin() -> Path:
    path = _find_binary()
    if not path.is_file():
        pytest.fail(f"sessiond binary not found at {path} (set SESSIOND_BIN or build it)",
                    pytrace=False)
    return path


class Server:
    """One database (an SQLite file in a temp dir) and at most one `sessiond serve` on it."""

    def __init__(self, binary: Path, tmp: Path) -> None:
        self.bin = binary
        self.tmp = tmp
        self.database_url = f"sqlite://{tmp / 'sessiond.db'}"
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = tmp / "sessiond-serve.log"
        self.url = ""

    def env(self, **extra: str) -> dict:
        # The caller's SESSIOND_* settings (SESSIOND_BIN, a developer's own) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
        env["DATABASE_URL"] = self.database_url
        env["SESSIOND_ADMIN_PASSWORD_FILE"] = str(self.tmp / "admin-password.txt")
        env.update(extra)
        return env

    def cli(self, args: Sequence[str], stdin: Optional[str] = None) -> str:
        proc = subprocess.run([str(self.bin), *args], input=stdin, capture_output=True,
                              text=True, env=self.env(), cwd=self.tmp, timeout=CLI_TIMEOUT)
        if proc.returncode != 0:
            raise AssertionError(f"`sessiond {' '.join(args)}` exited {proc.returncode}: "
                                 f"{proc.stderr.strip()}")
        return proc.stdout

    def add_user(self, user: str, password: str = PASSWORD, rights: Sequence[str] = (),
                 department: Optional[str] = None) -> None:
        args = ["user", "add", user, "--password-stdin"]
        if department is not None:
            args += ["--department", department]
        self.cli(args, stdin=password + "\n")
        for right in rights:
            self.cli(["user", "grant", user, right])

    def serve(self, **settings: str) -> str:
        """Starts `sessiond serve` with these SESSIOND_* settings; returns the endpoint URL."""
        assert self.proc is None, "one server per test"
        env = self.env(SESSIOND_BIND="127.0.0.1:0", RUST_LOG="info", **settings)
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([str(self.bin), "serve"], env=env, cwd=self.tmp,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = LISTENING_RE.search(self.log())
            if match:
                self.url = match.group(1)
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"sessiond serve did not start (exit {self.proc.poll()}):\n"
                             f"{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def server(sessiond_bin: Path, tmp_path: Path, request) -> Iterator[Server]:
    """A fresh database; add users, then call .serve(**settings)."""
    s = Server(sessiond_bin, tmp_path)
    request.node._sessiond_server = s
    try:
        yield s
    finally:
        crashed = s.proc is not None and s.proc.poll() is not None
        s.stop()
    if crashed:
        pytest.fail(f"sessiond serve exited during the test:\n{s.log()}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the server's log."""
    outcome = yield
    rep = outcome.get_result()
    s = getattr(item, "_sessiond_server", None)
    if rep.failed and s is not None:
        rep.sections.append(("sessiond serve log", s.log()))


def ids(sessions: List) -> List[str]:
    return [s.session_id for s in sessions]
