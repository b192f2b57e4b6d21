"""An administrator's report of the sessions sessiond holds, and an optional clean-up.

    SESSIOND_PASSWORD=... python examples/python/session_report.py [URL [USER]] [--purge]

USER needs a view right (ViewSessionRight, UpdateSessionRight or AdministratorRight) for the
report, and UpdateSessionRight or AdministratorRight without a department for --purge.
"""

from __future__ import annotations

import collections
import os
import sys

from sessiond_client import AccessDenied, Client, SessiondError


def main(argv: list[str]) -> int:
    purge = "--purge" in argv
    args = [a for a in argv[1:] if a != "--purge"]
    url = args[0] if args else os.environ.get(
        "SESSIOND_URL", "http://127.0.0.1:8080/services/SessionService")
    user = args[1] if len(args) > 1 else os.environ.get("SESSIOND_USER", "admin")
    password = os.environ["SESSIOND_PASSWORD"]

    try:
        with Client(url).session(user, password, client_name="session report") as me:
            active = me.list_active()  # a plain list: the legacy trailing nil is dropped
            by_user = collections.Counter(s.user_id for s in active)
            print(f"{len(active)} active sessions")
            for who, count in sorted(by_user.items()):
                print(f"  {who}: {count}")
            oldest = min(active, key=lambda s: s.last_activity_time)
            print(f"least recently active: {oldest.user_id} ({oldest.client_type}) at "
                  f"{oldest.last_activity_time:%Y-%m-%d %H:%M:%S %Z}")
            expired = me.list_expired()
            print(f"{len(expired)} expired sessions still stored")
            if purge:
                print(f"removed {me.delete_expired()} expired sessions")
    except AccessDenied:
        print(f"sessiond: {user} may not do this", file=sys.stderr)
        return 2
    except SessiondError as exc:
        print(f"sessiond: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
