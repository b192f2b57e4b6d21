#!/usr/bin/env python3
"""A throwaway OpenLDAP server for the browser tests' directory users.

  python3 tests/browser/slapd.py

Starts Debian's slapd on a free loopback port in a temporary directory, with the directory that
bench/directory.py builds (users dir0..dir59 with passwords dir-pw-N, the even ones members of
cn=admins), prints one JSON line with what sessiond's SESSIOND_LDAP_* settings need, and serves
until its standard input closes; then it stops slapd and removes its files. Standard library
only; needs slapd and ldap-utils.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The directory's shape is the benchmark's (one definition of its config and entries).
_spec = importlib.util.spec_from_file_location(
    "directory_bench", os.path.join(HERE, "..", "..", "bench", "directory.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def main():
    with tempfile.TemporaryDirectory() as root:
        os.mkdir(f"{root}/data")
        os.mkdir(f"{root}/slapd.d")
        with open(f"{root}/config.ldif", "w") as f:
            f.write(bench.config_ldif(root))
        subprocess.run(["/usr/sbin/slapadd", "-n0", "-F", f"{root}/slapd.d", "-l",
                        f"{root}/config.ldif"], check=True, stdout=subprocess.DEVNULL)
        port = bench.free_port()
        slapd = subprocess.Popen(["/usr/sbin/slapd", "-F", f"{root}/slapd.d", "-h",
                                  f"ldap://127.0.0.1:{port}/", "-d", "0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            subprocess.run(["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{port}", "-D",
                            bench.ADMIN_DN, "-w", bench.ADMIN_PW],
                           input=bench.data_ldif().encode(), check=True,
                           stdout=subprocess.DEVNULL)
            password_file = f"{root}/bind-pw"
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(bench.ADMIN_PW + "\n")
            print(json.dumps({
                "url": f"ldap://127.0.0.1:{port}",
                "bind_dn": bench.ADMIN_DN,
                "bind_password_file": password_file,
                "user_base": bench.PEOPLE,
                "admin_group": bench.ADMINS,
            }), flush=True)
            sys.stdin.read()
        finally:
            slapd.terminate()
            slapd.wait()


if __name__ == "__main__":
    sys.exit(main())
