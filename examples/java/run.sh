#!/usr/bin/env bash
# Generates the JAX-WS classes from a running server's WSDL, compiles SessionExample.java and
# runs it: examples/java/run.sh URL USER, with SESSIOND_PASSWORD in the environment.
# Needs a JDK and wsimport with the JAX-WS runtime: on Debian 12, `apt-get install jaxws`
# (JAX-WS 2.3, jars in /usr/share/java); with another JAX-WS (Metro, CXF's wsdl2java differs),
# set JAXWS_CLASSPATH to its jars.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${1:-${SESSIOND_URL:-http://127.0.0.1:8080/services/SessionService}}
user=${2:-${SESSIOND_USER:-alice}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -z "${JAXWS_CLASSPATH:-}" ]; then
    JAXWS_CLASSPATH=
    for jar in jaxws-api jaxws-rt jaxb-api jaxb-runtime jaxb-impl jaxb-core javax.activation \
               saaj-impl stax-ex streambuffer mimepull metro-policy istack-commons-runtime \
               gmbal glassfish-management-api jws-api; do
        [ -f "/usr/share/java/$jar.jar" ] && JAXWS_CLASSPATH+="/usr/share/java/$jar.jar:"
    done
fi

mkdir "$work/gen" "$work/classes"
wsimport -quiet -keep -Xnocompile -p sessiond.client -d "$work/gen" "$url?wsdl"
javac -nowarn -cp "$JAXWS_CLASSPATH" -d "$work/classes" \
    $(find "$work/gen" -name '*.java') "$here/SessionExample.java"
# The JAX-WS runtime logs a deprecation warning per SOAP factory lookup; keep stderr for errors.
java -Djava.util.logging.config.file=/dev/null -cp "$work/classes:$JAXWS_CLASSPATH" \
    SessionExample "$url" "$user" 2> >(grep -v -e 'FactoryFinder find' -e 'deprecated META-INF' >&2)
