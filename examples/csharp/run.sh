#!/usr/bin/env bash
# Generates the proxy from a running server's WSDL with Mono's `wsdl`, compiles
# SessionExample.cs and runs it: examples/csharp/run.sh URL USER, SESSIOND_PASSWORD in the
# environment. Needs Mono (Debian: apt-get install mono-devel).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${1:-${SESSIOND_URL:-http://127.0.0.1:8080/services/SessionService}}
user=${2:-${SESSIOND_USER:-alice}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

wsdl -nologo -namespace:Sessiond -out:"$work/SessionService.cs" "$url?wsdl" >/dev/null
mcs -nologo -warn:0 -r:System.Web.Services.dll -out:"$work/SessionExample.exe" \
    "$work/SessionService.cs" "$here/SessionExample.cs"
mono "$work/SessionExample.exe" "$url" "$user"
