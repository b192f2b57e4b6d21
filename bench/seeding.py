"""Database seeding: a fresh database per backend, and sessions stored straight into it (far
quicker than logins through Argon2)."""

import os
import random
import sqlite3
import subprocess
import time
from pathlib import Path

from common import BenchError, log


SEED_COLUMNS = "session_id, user_id, client_type, location, created_at"


def activity_of(prefix, first, last):
    """SQL that gives the seeded sessions prefix<first>…prefix<last> their last activity (in a
    table of its own) equal to their creation."""
    return (
        "INSERT INTO session_activity (session_id, last_activity) "
        "SELECT session_id, created_at FROM sessions "
        f"WHERE session_id BETWEEN '{prefix}{first:08d}' AND '{prefix}{last:08d}' "
        f"AND length(session_id) = {len(prefix) + 8}"
    )
# Seeded sessions: 'bench' + 8 digits, 13 characters; getSession's IDs are 43 characters.
SEEDED = "session_id LIKE 'bench%' AND length(session_id) = 13"


class SqliteDb:
    kind = "sqlite"

    def __init__(self, workdir):
        self.path = Path(workdir) / "bench.db"
        self.url = f"sqlite://{self.path}"
        self._conn = None

    def create(self):
        pass

    def drop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def conn(self):
        if self._conn is None:
            # The server holds the file in WAL mode; wait for its write lock rather than fail.
            self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 60000")
            # A session's last activity goes with it (a cascading foreign key), as in the server.
            self._conn.execute("PRAGMA foreign_keys = ON")
        return self._conn

    def execute(self, sql, params=()):
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            n = c.execute(sql, params).rowcount
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return n

    def scalar(self, sql, params=()):
        return self.conn().execute(sql, params).fetchone()[0]

    @staticmethod
    def minus_ms(at, n):
        """SQL for the instant `at` (a literal) minus `n` (an SQL expression) milliseconds."""
        return f"strftime('%Y-%m-%d %H:%M:%f', '{at}', printf('%.3f seconds', -({n}) * 0.001))"

    def seed(self, prefix, first, count, at):
        """Sessions prefix00000001… straight into the table, 100k rows per transaction; session
        number i was created, and last active, (i mod 100,000) milliseconds before `at`: at most
        100 s apart, so that they all stay active through a long run."""
        chunk = 100_000
        i = first
        end = first + count
        when = self.minus_ms(at, "i % 100000")
        while i < end:
            last = min(i + chunk, end) - 1
            self.execute(
                f"WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                f"INSERT INTO sessions ({SEED_COLUMNS}) "
                f"SELECT ? || printf('%08d', i), 'bench', 'standard', 'bench', {when} FROM n",
                (i, last, prefix),
            )
            self.execute(activity_of(prefix, i, last))
            i = last + 1

    def after_bulk_change(self):
        pass


class PostgresDb:
    kind = "postgres"

    def __init__(self, host, port, user):
        self.host, self.port, self.user = host, port, user
        self.name = f"sessiond_bench_{os.getpid()}_{random.randrange(16**6):06x}"
        self.url = f"postgres://{user}@{host}:{port}/{self.name}"
        self.created = False

    def psql(self, sql, database=None):
        cmd = [
            "psql", "-h", self.host, "-p", str(self.port), "-U", self.user,
            "-d", database or self.name, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql,
        ]
        env = dict(os.environ, PGCONNECT_TIMEOUT="10")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise BenchError(f"psql failed ({sql[:80]}…): {p.stderr.strip()}")
        return p.stdout.strip()

    def create(self):
        self.psql(f"CREATE DATABASE {self.name}", database="postgres")
        self.created = True

    def drop(self):
        if self.created:
            self.psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", database="postgres")
            self.created = False

    @staticmethod
    def _inline(sql, params):
        # Parameters here are our own IDs and timestamps; quote them as literals.
        parts = sql.split("?")
        assert len(parts) == len(params) + 1, sql
        out = parts[0]
        for value, rest in zip(params, parts[1:]):
            out += (str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'")
            out += rest
        return out

    def execute(self, sql, params=()):
        # The server stores renewed activity in one transaction a second, row by row; a bulk
        # change of the same rows may deadlock with it, and PostgreSQL then aborts one of the two.
        for attempt in range(5):
            try:
                return self.psql(self._inline(sql, params) + ";")
            except BenchError as e:
                if "deadlock detected" not in str(e) or attempt == 4:
                    raise
                log(f"postgres: deadlock with the server's activity flush, retrying: {sql[:60]}")
                time.sleep(1)

    def scalar(self, sql, params=()):
        return int(self.psql(self._inline(sql, params)))

    @staticmethod
    def minus_ms(at, n):
        """SQL for the instant `at` (a literal) minus `n` (an SQL expression) milliseconds."""
        return f"(TIMESTAMP '{at}' - ({n}) * INTERVAL '1 millisecond')"

    def seed(self, prefix, first, count, at):
        """As SqliteDb.seed, in one INSERT … SELECT over generate_series."""
        last = first + count - 1
        when = self.minus_ms(at, "i % 100000")
        self.psql(
            f"INSERT INTO sessions ({SEED_COLUMNS}) "
            f"SELECT '{prefix}' || lpad(i::text, 8, '0'), 'bench', 'standard', 'bench', "
            f"{when} FROM generate_series({first}, {last}) AS i; {activity_of(prefix, first, last)}"
        )

    def after_bulk_change(self):
        # What autovacuum does on its own shortly after a bulk change: fresh planner statistics
        # and no dead rows left from it, i.e. the steady state a long-running service sees.
        self.psql("VACUUM ANALYZE sessions, session_activity")
