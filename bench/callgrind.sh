#!/usr/bin/env bash
# Usage: bench/callgrind.sh BINARY [CALLS] [PORT]  (needs valgrind, curl, python3; SQLite in a temp dir)
# CALLGRIND_KEEP=DIR keeps the callgrind output files there (for callgrind_annotate).
# Instructions per validateSession call, counted by callgrind (repeatable whatever the load):
# the server runs under callgrind with instrumentation off; it is switched on for N calls over
# one keep-alive connection and off again; Ir / N is the figure.
set -euo pipefail
bin=$1; n=${2:-2000}; port=${3:-18600}
d=$(mktemp -d); cd "$d"
DATABASE_URL=sqlite://$d/s.db SESSIOND_BIND=127.0.0.1:$port RUST_LOG=warn \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$d/cg.out "$bin" serve >serve.log 2>&1 &
vg=$!
for _ in $(seq 600); do [ -s sessiond-admin-password.txt ] && curl -s -o /dev/null "http://127.0.0.1:$port/services/SessionService?wsdl" && break; sleep 1; done
pw=$(cat sessiond-admin-password.txt)
python3 - "$port" "$pw" "$n" "$vg" <<'PY'
import http.client, re, subprocess, sys
port, pw, n, vg = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
env = '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:s="urn:sessiond:session:1"><soapenv:Body>%s</soapenv:Body></soapenv:Envelope>'
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
def call(inner):
    c.request("POST", "/services/SessionService", env % inner, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    return c.getresponse().read().decode()
sid = re.search(r"<tns:sessionId>([^<]+)<", call("<s:getSession><userId>admin</userId><password>%s</password></s:getSession>" % pw)).group(1)
body = "<s:validateSession><sessionId>%s</sessionId></s:validateSession>" % sid
for _ in range(200):
    assert "true" in call(body)
subprocess.run(["callgrind_control", "-i", "on", vg], check=True, capture_output=True)
for _ in range(n):
    assert "true" in call(body)
subprocess.run(["callgrind_control", "-i", "off", vg], check=True, capture_output=True)
PY
callgrind_control -d "$vg" >/dev/null
kill "$vg"; wait "$vg" 2>/dev/null || true
total=$(grep -h '^totals:' "$d"/cg.out* | awk '{s+=$2} END {print s}')
echo "$(basename "$bin"): $n validateSession calls, Ir total $total, per call $((total / n))"
if [ -n "${CALLGRIND_KEEP:-}" ]; then cp "$d"/cg.out* "$CALLGRIND_KEEP"/; fi
rm -rf "$d"
