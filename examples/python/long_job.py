"""A long job on one sessiond session.

The job logs in once, and the keep-alive thread extends the session while the job works, however
long a step takes compared with the server's idle timeout. Another process that is handed the
session ID can carry on in the same session with `client.attach(id)`; leaving the `with` block
closes the session, also when a step fails.

    SESSIOND_PASSWORD=... python examples/python/long_job.py [URL [USER]]

STEPS (default 3) steps of STEP_SECONDS (default 2) seconds each.
"""

from __future__ import annotations

import os
import sys
import time

from sessiond_client import Client, SessiondError


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else os.environ.get(
        "SESSIOND_URL", "http://127.0.0.1:8080/services/SessionService")
    user = argv[2] if len(argv) > 2 else os.environ.get("SESSIOND_USER", "alice")
    password = os.environ["SESSIOND_PASSWORD"]
    steps = int(os.environ.get("STEPS", "3"))
    step_seconds = float(os.environ.get("STEP_SECONDS", "2"))

    client = Client(url)
    try:
        with client.session(user, password, client_type="batch", client_name="long job",
                            keep_alive=True) as session:
            for step in range(1, steps + 1):
                time.sleep(step_seconds)  # the work; nothing is sent meanwhile but keep-alives
                info = session.info()
                print(f"step {step}/{steps} done; session valid until "
                      f"{info.expiration_time:%H:%M:%S} UTC")
            # What a helper process given the ID would do: reattach, never log in again.
            helper = client.attach(session.id)
            print(f"helper attached to {helper.info().client_name!r}")
        print("session closed:", not client.validate(session.id))
    except SessiondError as exc:
        print(f"sessiond: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
