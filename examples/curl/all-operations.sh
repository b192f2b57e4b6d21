#!/usr/bin/env bash
# Every operation of the sessiond contract (all 17), called once in turn with curl over SOAP 1.1,
# each answer printed as it came: a walk-through to copy requests from, and a smoke test.
#
#   SESSIOND_PASSWORD=... examples/curl/all-operations.sh [URL [USER]]
#
# URL   the endpoint (default $SESSIOND_URL, else http://127.0.0.1:8080/services/SessionService)
# USER  a user with AdministratorRight and no department, so that every operation is allowed
#       (default $SESSIOND_USER, else admin)
# SESSIOND_PASSWORD  USER's password; from the environment only, and sent to curl on standard
#       input, so that it never shows in the process list
# SESSIOND_CLIENTLESS_USER  the user a clientless session is opened for (default USER)
#
# Output: for each call a line "== OPERATION (HTTP STATUS)", then the response envelope; lines
# starting with "#" explain. Exits non-zero with the fault's code at the first call that fails.
# Needs bash, curl, grep and sed.
set -euo pipefail

url=${1:-${SESSIOND_URL:-http://127.0.0.1:8080/services/SessionService}}
user=${2:-${SESSIOND_USER:-admin}}
password=${SESSIOND_PASSWORD:?set SESSIOND_PASSWORD to the password of $user}
clientless_user=${SESSIOND_CLIENTLESS_USER:-$user}
TNS=urn:sessiond:session:1
answer=

# Text made safe to put inside an XML element.
xml() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' <<<"$1"; }

# call OPERATION CHILDREN: POSTs one request (the wrapper element holds CHILDREN), prints the
# answer and keeps it in $answer; stops the script on a fault.
call() {
    local op=$1 children=$2 out status
    # printf is a shell builtin: the password in CHILDREN is never a command-line argument.
    out=$(printf '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><%s xmlns="%s">%s</%s></soap:Body></soap:Envelope>' \
            "$op" "$TNS" "$children" "$op" |
          curl -sS "$url" -H 'Content-Type: text/xml; charset=utf-8' \
               -H "SOAPAction: \"$TNS/$op\"" --data-binary @- -w '\n%{http_code}')
    status=${out##*$'\n'}
    answer=${out%$'\n'*}
    printf '== %s (HTTP %s)\n%s\n' "$op" "$status" "$answer"
    if [ "$status" != 200 ]; then
        echo "$op failed: HTTP $status, fault $(field code) ($(field message))" >&2
        exit 1
    fi
}

# field NAME: the text of the first NAME element (any prefix) of the last answer.
field() {
    grep -o "<\([A-Za-z0-9_]*:\)\{0,1\}$1>[^<]*<" <<<"$answer" | head -1 | sed 's/^[^>]*>//; s/<$//'
}

login="<userId>$(xml "$user")</userId><password>$(xml "$password")</password>"

call getSession "$login"
sid=$(field sessionId)
echo "# the session ID goes as sessionId into every call that follows"

call validateSession "<sessionId>$sid</sessionId>"

call getBWSession "$login"
bw=$(field sessionId)

call startSession "$login<clientType>curl-example</clientType><clientName>all-operations.sh</clientName>"
started=$(field sessionId)

call getCurrentSession "<sessionId>$sid</sessionId>"

call extendSession "<sessionId>$sid</sessionId>"
echo "# the session now expires at $(field expirationTime)"

call confirmId "<sessionId>$sid</sessionId><password>$(xml "$password")</password>"

call getSessionInfo "<sessionId>$sid</sessionId><targetSessionId>$started</targetSessionId>"

call getSessionUser "<sessionId>$sid</sessionId><targetSessionId>$started</targetSessionId>"

call listActiveSessionIds "<sessionId>$sid</sessionId>"
echo '# a getSession caller: the array ends with <session xsi:nil="true"/>'
call listActiveSessionIds "<sessionId>$bw</sessionId>"
echo "# a getBWSession caller: no nil element"

call getExpiredSessionIds "<sessionId>$sid</sessionId>"

call getSessions "<sessionId>$sid</sessionId><filterClientType>curl-example</filterClientType><includeExpired>false</includeExpired><offset>0</offset><limit>10</limit>"

call openClientlessSession "<sessionId>$sid</sessionId><userId>$(xml "$clientless_user")</userId><clientName>curl example job</clientName>"
clientless=$(field clientlessSessionId)

call closeClientlessSession "<sessionId>$sid</sessionId><clientlessSessionId>$clientless</clientlessSessionId>"

call deleteSessionId "<sessionId>$sid</sessionId><targetSessionId>$started</targetSessionId>"

call deleteExpiredSessionIds "<sessionId>$sid</sessionId>"

call closeSession "<sessionId>$bw</sessionId>"
call closeSession "<sessionId>$sid</sessionId>"
echo "# done: every session this script opened is closed"
