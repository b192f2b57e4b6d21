<?php
/*
 * Interoperability checks of sessiond with PHP's SoapClient (ext-soap), through the served WSDL.
 *
 *   php session_client.php WSDL_URL SOAP_VERSION SCENARIO [role=user:password ...] [timeout=SECONDS]
 *                          [sid.NAME=SESSION_ID ...]
 *
 *   WSDL_URL      e.g. http://127.0.0.1:PORT/services/SessionService?wsdl (SOAP 1.1)
 *                 or   http://127.0.0.1:PORT/services/SessionService?wsdl=soap12 (SOAP 1.2)
 *   SOAP_VERSION  1.1 or 1.2
 *   SCENARIO      basic | expiry | lockout | extended | after_cli | extended_expiry (see the
 *                 functions below for the roles each needs)
 *   timeout=N     expiry, extended_expiry: the server's SESSIOND_SESSION_TIMEOUT in seconds
 *                 (default 2)
 *   sid.NAME=ID   after_cli: a session ID that scenario extended reported ("# sid NAME ID")
 *
 * Prints one line per check ("ok - ..." / "not ok - ..."), then "# passed N failed M";
 * exits 0 only when every check passed (1 on failed checks, 2 on a usage error or crash).
 */

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');
ini_set('default_socket_timeout', '30');

const TNS = 'urn:sessiond:session:1';
const ENV11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const ENV12 = 'http://www.w3.org/2003/05/soap-envelope';
const BOGUS = 'no-such-session-0123456789abcdef';

$PASSED = 0;
$FAILED = 0;

function check($ok, $what, $detail = '') {
    global $PASSED, $FAILED;
    if ($ok) {
        $PASSED++;
        echo "ok - $what\n";
    } else {
        $FAILED++;
        echo "not ok - $what" . ($detail !== '' ? ": $detail" : '') . "\n";
    }
    return $ok;
}

function show($v) {
    return str_replace("\n", ' ', var_export($v, true));
}

function usage($msg) {
    fwrite(STDERR, "error: $msg\nusage: php session_client.php WSDL_URL 1.1|1.2 SCENARIO [role=user:password ...] [timeout=SECONDS] [sid.NAME=ID ...]\n");
    exit(2);
}

class Sessiond {
    public $client;
    public $version;
    public $lastFaulted = false;
    public $lastById = [];

    function __construct($wsdl, $version) {
        $this->version = $version;
        $this->client = new SoapClient($wsdl, [
            'soap_version' => $version === '1.2' ? SOAP_1_2 : SOAP_1_1,
            'cache_wsdl' => WSDL_CACHE_NONE,
            'exceptions' => true,
            'trace' => 1,
            'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
            'connection_timeout' => 30,
        ]);
    }

    /* The last exchange used the requested SOAP version on both sides. */
    function checkProtocol($op, $fault) {
        $c = $this->client;
        $want = $this->version === '1.2' ? 'application/soap+xml' : 'text/xml';
        $envNs = $this->version === '1.2' ? ENV12 : ENV11;
        $reqHeaders = (string)$c->__getLastRequestHeaders();
        $respHeaders = (string)$c->__getLastResponseHeaders();
        $problems = [];
        if (!preg_match('#^Content-Type:\s*' . preg_quote($want, '#') . '#mi', $reqHeaders)) {
            $problems[] = "PHP did not send $want (test setup)";
        }
        if (!preg_match('#^Content-Type:\s*' . preg_quote($want, '#') . '\s*(;|$)#mi', $respHeaders)) {
            preg_match('#^Content-Type:.*$#mi', $respHeaders, $m);
            $problems[] = 'response ' . trim($m[0] ?? 'without Content-Type') . ", expected $want";
        }
        $status = preg_match('#^HTTP/\S+\s+(\d+)#', $respHeaders, $m) ? (int)$m[1] : 0;
        $root = xml_elements((string)$c->__getLastResponse())[0] ?? null;
        if ($root === null || $root !== '{' . $envNs . '}Envelope') {
            $problems[] = 'response envelope ' . show($root) . ", expected {{$envNs}}Envelope";
        }
        if (!$fault && $status !== 200) {
            $problems[] = "HTTP $status for a success";
        }
        if ($fault && $this->version === '1.1' && $status !== 500) {
            $problems[] = "SOAP 1.1 fault with HTTP $status";
        }
        if ($fault && $this->version === '1.2' && $status !== 400 && $status !== 500) {
            $problems[] = "SOAP 1.2 fault with HTTP $status";
        }
        check(!$problems, "$op: SOAP {$this->version} protocol", implode('; ', $problems));
    }

    /* A call that must succeed; returns the response object (null when it faulted). */
    function call($op, array $params) {
        $this->lastFaulted = false;
        try {
            $r = $this->client->__soapCall($op, [$params]);
        } catch (SoapFault $e) {
            $this->lastFaulted = true;
            check(false, "$op succeeds", 'fault ' . fault_code($e) . ': ' . $e->getMessage());
            return null;
        }
        $this->checkProtocol($op, false);
        return $r;
    }

    /* Local name of the first element in the last response's Body. */
    function lastBodyElement() {
        $path = xml_elements((string)$this->client->__getLastResponse());
        // [Envelope, (Header...,) Body, first child of Body]
        $i = array_search('{' . ($this->version === '1.2' ? ENV12 : ENV11) . '}Body', $path, true);
        return $i === false ? null : ($path[$i + 1] ?? null);
    }

    /* A call that must fault with the given sessionServiceFault code; returns the SoapFault. */
    function fault($code, $op, array $params, $what = null) {
        $what = $what ?? "$op gives $code";
        try {
            $r = $this->client->__soapCall($op, [$params]);
        } catch (SoapFault $e) {
            $this->checkProtocol($op, true);
            $got = fault_code($e);
            check($got === $code, $what, 'got ' . show($got) . ' (' . $e->getMessage() . '), detail ' . show($e->detail ?? null));
            return $e;
        }
        check(false, $what, 'no fault, returned ' . show($r));
        return null;
    }

    function login($user, $password, $bw = false) {
        $op = $bw ? 'getBWSession' : 'getSession';
        $r = $this->call($op, ['userId' => $user, 'password' => $password]);
        $sid = $r->sessionId ?? null;
        check(is_string($sid) && preg_match('/^[A-Za-z0-9_~.\-]{22,64}$/', $sid) === 1,
              "$op($user) returns a session ID", show($sid));
        return (string)$sid;
    }

    function validate($sid) {
        $r = $this->call('validateSession', ['sessionId' => $sid]);
        return $r->valid ?? null;
    }

    function close($sid) {
        $r = $this->call('closeSession', ['sessionId' => $sid]);
        return $r->closed ?? null;
    }

    /* A call that may fault: [response or null, sessionServiceFault code or null]; the
       protocol is checked either way, no other check is recorded. */
    function tryCall($op, array $params) {
        try {
            $r = $this->client->__soapCall($op, [$params]);
        } catch (SoapFault $e) {
            $this->checkProtocol($op, true);
            return [null, fault_code($e) ?? ('<no code: ' . $e->getMessage() . '>')];
        }
        $this->checkProtocol($op, false);
        return [$r, null];
    }

    /* startSession, getSessionInfo, getCurrentSession: the SessionInfo (null when it faulted). */
    function info($op, array $params) {
        $r = $this->call($op, $params);
        $info = $r->session ?? null;
        if (!$this->lastFaulted) {
            check(is_object($info), "$op answers a SessionInfo", show($r));
        }
        return is_object($info) ? $info : null;
    }

    /* getSessions: the SessionInfo objects of the array (nil elements left out). */
    function infos($caller, array $params = []) {
        $this->ids('getSessions', $caller, $params);
        return array_values($this->lastById);
    }

    /* Array result as a list of sessionId strings, with null for a nil element. $params: the
       operation's other parts (getSessions' filters). */
    function ids($op, $caller, array $params = []) {
        $r = $this->call($op, ['sessionId' => $caller] + $params);
        if ($this->lastFaulted) {
            return ['<fault>'];
        }
        if ($r === null || !is_object($r) || !property_exists($r, 'session')) {
            return [];  // no element at all
        }
        $list = $r->session;
        if ($list === null) {
            // ext-soap decodes a lone <session xsi:nil="true"/> as a null property, even with
            // SOAP_SINGLE_ELEMENT_ARRAYS (no element at all leaves the property unset).
            $list = [null];
        }
        if (!is_array($list)) {
            return ['<not an array: ' . show($list) . '>'];
        }
        $out = [];
        $this->lastById = [];
        foreach ($list as $s) {
            $out[] = $s === null ? null : ($s->sessionId ?? '<no sessionId>');
            if ($s !== null && isset($s->sessionId)) {
                $this->lastById[$s->sessionId] = $s;
            }
        }
        // Cross-check with the XML on the wire: number of session elements, which of them nil.
        $raw = raw_session_elements((string)$this->client->__getLastResponse());
        $decoded = array_map(function ($x) { return $x === null; }, $out);
        if ($raw !== $decoded) {
            return ['<decoded ' . show($out) . ' but the XML had ' . show($raw) . ' (true = nil)>'];
        }
        return $out;
    }

    /*
     * The array holds exactly $createdIds (in the order the script created them), ordered by
     * creationTime then sessionId, then one nil element unless $bw. The order is computed from
     * the creationTime values returned, which must agree with the real creation order.
     */
    function arrayCheck($op, $caller, array $createdIds, $bw, $what, array $params = []) {
        $got = $this->ids($op, $caller, $params);
        $ts = [];
        foreach ($createdIds as $id) {
            $ts[$id] = isset($this->lastById[$id]) ? xsd_time($this->lastById[$id]->creationTime ?? '') : [0, 0];
        }
        $monotonic = true;
        $prev = null;
        foreach ($createdIds as $id) {
            if ($prev !== null && ($ts[$id] <=> $prev) < 0) {
                $monotonic = false;
            }
            $prev = $ts[$id];
        }
        $expected = $createdIds;
        usort($expected, function ($a, $b) use ($ts) {
            return ($ts[$a] <=> $ts[$b]) ?: strcmp($a, $b);
        });
        if (!$bw) {
            $expected[] = null;
        }
        check($got === $expected && $monotonic, $what,
              'got ' . show($got) . ' expected ' . show($expected)
              . ($monotonic ? '' : ' (creationTime values contradict the creation order)'));
        return $got;
    }
}

/*
 * Expanded names ({ns}local) of the envelope, then of the start tags up to and including the
 * first child of Body, in document order. A deliberately small reader (regular expressions) so
 * that the checks need only ext-soap, not ext-dom: it resolves prefixes through the declarations
 * on the element itself and on the Envelope and Body elements.
 */
function xml_elements($xml) {
    $xml = preg_replace('/<\?.*?\?>|<!--.*?-->/s', '', $xml);
    if (!preg_match_all('#<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)((?:\s+[^\s=>/]+\s*=\s*(?:"[^"]*"|\'[^\']*\'))*)\s*/?>#s',
                        $xml, $m, PREG_SET_ORDER)) {
        return [];
    }
    $scope = [];
    $out = [];
    $inBody = false;
    foreach ($m as $tag) {
        $decls = $scope;
        preg_match_all('#xmlns(?::([\w.\-]+))?\s*=\s*(?:"([^"]*)"|\'([^\']*)\')#', $tag[2], $d, PREG_SET_ORDER);
        foreach ($d as $x) {
            $decls[$x[1] ?? ''] = ($x[2] ?? '') !== '' ? $x[2] : ($x[3] ?? '');
        }
        $parts = explode(':', $tag[1], 2);
        [$prefix, $local] = count($parts) === 2 ? $parts : ['', $parts[0]];
        $name = '{' . ($decls[$prefix] ?? '?') . '}' . $local;
        $out[] = $name;
        if ($inBody) {
            break;
        }
        if ($local === 'Envelope' || $local === 'Body') {
            $scope = $decls;
        }
        if ($local === 'Body') {
            $inBody = true;
        }
    }
    return $out;
}

/* xs:dateTime as [unix seconds, nanoseconds] (comparable with <=>); [0, 0] when unparsable. */
function xsd_time($v) {
    if (!is_string($v) || !preg_match('/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$/', $v, $m)) {
        return [0, 0];
    }
    $secs = strtotime($m[1] . (($m[3] ?? '') === '' ? 'Z' : $m[3]));
    return [$secs === false ? 0 : $secs, (int)str_pad(substr($m[2] ?? '', 0, 9), 9, '0')];
}

/* xs:dateTime as float seconds since the epoch; null when it is not an xs:dateTime string. */
function xsd_secs($v) {
    [$secs, $nanos] = xsd_time($v);
    return $secs === 0 && $nanos === 0 ? null : $secs + $nanos / 1e9;
}

const SESSION_INFO_FIELDS = ['sessionId', 'userId', 'clientType', 'clientName', 'host', 'location',
    'creationTime', 'lastActivityTime', 'expirationTime', 'endTime', 'endReason', 'createdBy',
    'isCurrent', 'isRemote'];

/*
 * One SessionInfo as SoapClient decoded it: strings, xs:dateTime as strings, xs:boolean as PHP
 * bools, nil elements as null properties. $want: userId, clientType, isCurrent (required);
 * sessionId, clientName (null), createdBy (null), location, isRemote (false), created
 * ([low, high] unix seconds), timeout (1800), live (true: endTime and endReason null).
 */
function check_info($info, array $want, $what) {
    if (!is_object($info)) {
        return check(false, $what, 'no SessionInfo: ' . show($info));
    }
    $p = [];
    foreach (SESSION_INFO_FIELDS as $f) {
        if (!property_exists($info, $f)) {
            $p[] = "no $f";
        }
    }
    $w = $want + ['clientName' => null, 'createdBy' => null, 'isRemote' => false, 'timeout' => 1800,
                  'live' => true, 'host' => '127.0.0.1'];
    foreach (['sessionId', 'userId', 'clientType', 'clientName', 'host', 'location', 'createdBy',
              'isCurrent', 'isRemote'] as $f) {
        if (array_key_exists($f, $w) && ($info->$f ?? null) !== $w[$f]) {
            $p[] = "$f " . show($info->$f ?? null) . ', expected ' . show($w[$f]);
        }
    }
    if (!is_string($info->sessionId ?? null) || !preg_match('/^[A-Za-z0-9_~.\-]{22,64}$/', $info->sessionId)) {
        $p[] = 'sessionId ' . show($info->sessionId ?? null);
    }
    $t = [];
    foreach (['creationTime', 'lastActivityTime', 'expirationTime'] as $f) {
        $t[$f] = xsd_secs($info->$f ?? null);
        if ($t[$f] === null) {
            $p[] = "$f " . show($info->$f ?? null) . ' is not an xs:dateTime string';
        }
    }
    if (!in_array(null, $t, true)) {
        if (isset($w['created']) && ($t['creationTime'] < $w['created'][0] || $t['creationTime'] > $w['created'][1])) {
            $p[] = "creationTime {$info->creationTime} outside " . show($w['created']);
        }
        if ($t['lastActivityTime'] < $t['creationTime']) {
            $p[] = 'lastActivityTime before creationTime';
        }
        $delta = $t['expirationTime'] - $t['lastActivityTime'];
        if (abs($delta - $w['timeout']) > 1) {
            $p[] = "expirationTime - lastActivityTime = {$delta}s, expected {$w['timeout']}";
        }
    }
    if ($w['live'] && (($info->endTime ?? null) !== null || ($info->endReason ?? null) !== null)) {
        $p[] = 'endTime/endReason ' . show([$info->endTime ?? null, $info->endReason ?? null]) . ' for a live session';
    }
    return check(!$p, $what, implode('; ', $p));
}

/* An ended session: endReason, endTime an xs:dateTime within [$lo, $hi], isCurrent false. */
function check_ended($info, $reason, $lo, $hi, $what) {
    $end = xsd_secs($info->endTime ?? null);
    return check(is_object($info) && ($info->endReason ?? null) === $reason && $end !== null
                 && $end >= $lo && $end <= $hi && ($info->isCurrent ?? null) === false,
                 $what, show([$info->endReason ?? null, $info->endTime ?? null, $lo, $hi]));
}

/* For each <session> element of an array response: true when it is xsi:nil="true". */
function raw_session_elements($xml) {
    $xml = preg_replace('/<!--.*?-->/s', '', $xml);
    preg_match_all('#<(?:[\w.\-]+:)?session(\s[^>]*)?/?>#s', $xml, $m, PREG_SET_ORDER);
    $out = [];
    foreach ($m as $tag) {
        $out[] = preg_match('#\s[\w.\-]+:nil\s*=\s*["\'](true|1)["\']#', $tag[1] ?? '') === 1;
    }
    return $out;
}

/* The CODE from <tns:sessionServiceFault><tns:code>, as decoded by SoapClient into $e->detail. */
function fault_code(SoapFault $e) {
    $d = $e->detail ?? null;
    if (is_object($d) && isset($d->sessionServiceFault)) {
        $d = $d->sessionServiceFault;
    }
    if (is_object($d) && isset($d->code)) {
        return $d->code;
    }
    return null;
}

function fault_message(SoapFault $e) {
    $d = $e->detail ?? null;
    if (is_object($d) && isset($d->sessionServiceFault)) {
        $d = $d->sessionServiceFault;
    }
    return is_object($d) && isset($d->message) ? $d->message : null;
}

function role(array $roles, $name) {
    if (!isset($roles[$name])) {
        usage("missing role $name=user:password");
    }
    return $roles[$name];
}

/* Roles: viewer (ViewSessionRight), updater (UpdateSessionRight), admin (AdministratorRight,
   no department), deptadmin (AdministratorRight, with a department), plain (no right), alice. */
function scenario_basic(Sessiond $s, array $roles, array $options) {
    [$alice, $alicePw] = role($roles, 'alice');
    [$viewer, $viewerPw] = role($roles, 'viewer');
    [$updater, $updaterPw] = role($roles, 'updater');
    [$admin, $adminPw] = role($roles, 'admin');
    [$deptadmin, $deptadminPw] = role($roles, 'deptadmin');
    [$plain, $plainPw] = role($roles, 'plain');

    // getSession / getBWSession / validateSession
    $v = $s->login($viewer, $viewerPw);
    $a1 = $s->login($alice, $alicePw);
    $a2 = $s->login($alice, $alicePw, true);
    check(count(array_unique([$v, $a1, $a2])) === 3, 'session IDs are unique');
    check($s->validate($a1) === true, 'validateSession(getSession session) is true');
    check($s->validate($a2) === true, 'validateSession(getBWSession session) is true');
    check($s->validate(BOGUS) === false, 'validateSession(unknown) is false');

    // authentication failures
    $wrong = $s->fault('AUTHENTICATION_FAILED', 'getSession', ['userId' => $alice, 'password' => $alicePw . 'x'],
                       'getSession with a wrong password gives AUTHENTICATION_FAILED');
    $unknown = $s->fault('AUTHENTICATION_FAILED', 'getSession', ['userId' => 'nobody-' . $alice, 'password' => $alicePw],
                         'getSession for an unknown user gives AUTHENTICATION_FAILED');
    $s->fault('AUTHENTICATION_FAILED', 'getBWSession', ['userId' => $alice, 'password' => 'wrong'],
              'getBWSession with a wrong password gives AUTHENTICATION_FAILED');
    $s->fault('AUTHENTICATION_FAILED', 'getBWSession', ['userId' => 'nobody-' . $alice, 'password' => 'x'],
              'getBWSession for an unknown user gives AUTHENTICATION_FAILED');
    if ($wrong && $unknown) {
        check(fault_message($wrong) === fault_message($unknown) && $wrong->getMessage() === $unknown->getMessage(),
              'unknown user and wrong password give the same message',
              show([fault_message($wrong), fault_message($unknown)]));
    }

    // arrays: getSession caller -> trailing nil; getBWSession caller -> none
    $vbw = $s->login($viewer, $viewerPw, true);
    $s->arrayCheck('listActiveSessionIds', $v, [$v, $a1, $a2, $vbw], false,
                   'listActiveSessionIds (getSession caller): creation order, then one nil element');
    $s->arrayCheck('listActiveSessionIds', $vbw, [$v, $a1, $a2, $vbw], true,
                   'listActiveSessionIds (getBWSession caller): no nil element');
    $s->arrayCheck('getExpiredSessionIds', $v, [], false,
                   'getExpiredSessionIds empty (getSession caller): exactly one nil element');
    $s->arrayCheck('getExpiredSessionIds', $vbw, [], true,
                   'getExpiredSessionIds empty (getBWSession caller): no element');

    // session fields
    $r = $s->call('listActiveSessionIds', ['sessionId' => $v]);
    $sessions = is_array($r->session ?? null) ? $r->session : [];
    $byId = [];
    foreach ($sessions as $x) {
        if ($x !== null) {
            $byId[$x->sessionId] = $x;
        }
    }
    check(($byId[$a1]->userId ?? null) === $alice && ($byId[$a1]->clientType ?? null) === 'standard',
          'getSession session: userId and clientType standard', show($byId[$a1] ?? null));
    check(($byId[$a2]->userId ?? null) === $alice && ($byId[$a2]->clientType ?? null) === 'bw',
          'getBWSession session: userId and clientType bw', show($byId[$a2] ?? null));
    check(($byId[$a1]->host ?? null) === '127.0.0.1', 'host is the caller address', show($byId[$a1]->host ?? null));
    $created = strtotime($byId[$a1]->creationTime ?? 'invalid');
    $last = strtotime($byId[$a1]->lastActivityTime ?? 'invalid');
    $exp = strtotime($byId[$a1]->expirationTime ?? 'invalid');
    check($created !== false && abs($created - time()) < 120, 'creationTime is now', show($byId[$a1]->creationTime ?? null));
    check($last !== false && $exp !== false && abs(($exp - $last) - 1800) <= 2,
          'expirationTime = lastActivityTime + 30 min', show([$byId[$a1]->lastActivityTime ?? null, $byId[$a1]->expirationTime ?? null]));

    // view right
    foreach ([[$updater, $updaterPw], [$admin, $adminPw], [$deptadmin, $deptadminPw]] as [$u, $pw]) {
        $sid = $s->login($u, $pw);
        $got = $s->ids('listActiveSessionIds', $sid);
        check(end($got) === null && in_array($sid, $got, true), "$u may list active sessions", show($got));
        $s->arrayCheck('getExpiredSessionIds', $sid, [], false, "$u may list expired sessions");
    }
    $p = $s->login($plain, $plainPw);
    $s->fault('ACCESS_DENIED', 'listActiveSessionIds', ['sessionId' => $p], 'listActiveSessionIds without a right: ACCESS_DENIED');
    $s->fault('ACCESS_DENIED', 'getExpiredSessionIds', ['sessionId' => $p], 'getExpiredSessionIds without a right: ACCESS_DENIED');

    // deleteSessionId
    $target = $s->login($alice, $alicePw);
    foreach ([[$viewer, $v], [$plain, $p], [$deptadmin, $s->login($deptadmin, $deptadminPw)]] as [$u, $sid]) {
        $s->fault('ACCESS_DENIED', 'deleteSessionId', ['sessionId' => $sid, 'targetSessionId' => $target],
                  "deleteSessionId by $u: ACCESS_DENIED");
    }
    check($s->validate($target) === true, 'target still valid after denied deletes');
    foreach ([[$updater, $updaterPw], [$admin, $adminPw]] as [$u, $pw]) {
        $sid = $s->login($u, $pw);
        $target = $s->login($alice, $alicePw);
        $s->call('deleteSessionId', ['sessionId' => $sid, 'targetSessionId' => $target]);
        check(!$s->lastFaulted && $s->lastBodyElement() === '{' . TNS . '}deleteSessionIdResponse',
              "deleteSessionId by $u answers deleteSessionIdResponse", show($s->lastBodyElement()));
        check($s->validate($target) === false, "target invalid after deleteSessionId by $u");
        $s->fault('SESSION_NOT_FOUND', 'deleteSessionId', ['sessionId' => $sid, 'targetSessionId' => $target],
                  "deleteSessionId of a deleted session: SESSION_NOT_FOUND ($u)");
        $s->fault('SESSION_NOT_FOUND', 'deleteSessionId', ['sessionId' => $sid, 'targetSessionId' => BOGUS],
                  "deleteSessionId of an unknown session: SESSION_NOT_FOUND ($u)");
    }

    // deleteExpiredSessionIds
    $u = $s->login($updater, $updaterPw);
    $r = $s->call('deleteExpiredSessionIds', ['sessionId' => $u]);
    check(($r->deletedCount ?? null) === 0, 'deleteExpiredSessionIds with nothing expired returns 0', show($r));
    $s->fault('ACCESS_DENIED', 'deleteExpiredSessionIds', ['sessionId' => $v], 'deleteExpiredSessionIds by a viewer: ACCESS_DENIED');
    $s->fault('ACCESS_DENIED', 'deleteExpiredSessionIds', ['sessionId' => $s->login($deptadmin, $deptadminPw)],
              'deleteExpiredSessionIds by an admin with a department: ACCESS_DENIED');

    // unknown caller session
    foreach (['listActiveSessionIds', 'getExpiredSessionIds', 'deleteExpiredSessionIds'] as $op) {
        $s->fault('INVALID_SESSION', $op, ['sessionId' => BOGUS], "$op with an unknown session: INVALID_SESSION");
    }
    $s->fault('INVALID_SESSION', 'deleteSessionId', ['sessionId' => BOGUS, 'targetSessionId' => $a1],
              'deleteSessionId with an unknown session: INVALID_SESSION');

    // closeSession
    check($s->close($a1) === true, 'closeSession(live) is true');
    check($s->validate($a1) === false, 'validateSession after close is false');
    check($s->close($a1) === false, 'closeSession(closed) is false');
    check($s->close(BOGUS) === false, 'closeSession(unknown) is false');
    check($s->close($a2) === true, 'closeSession(getBWSession session) is true');
    $got = $s->ids('listActiveSessionIds', $vbw);
    check(!in_array($a1, $got, true) && !in_array($a2, $got, true) && in_array($v, $got, true)
          && in_array($vbw, $got, true) && !in_array(null, $got, true),
          'closed sessions are no longer listed', show($got));
}

/* Thrown to stop a scenario whose later checks would only repeat an earlier failure. */
class Abort extends Exception {
}

/*
 * Sessions renewed (validateSession) often enough never to expire. Tracks when each was last
 * renewed, so that one found expired is reported as a server bug (renewed well within the
 * timeout) or as a machine too slow for the timeout (e.g. an Argon2 login took that long).
 */
class KeepAlive {
    private $s;
    private $timeout;
    private $interval;
    private $last = [];
    private $how = [];

    function __construct(Sessiond $s, $timeout) {
        $this->s = $s;
        $this->timeout = $timeout;
        $this->interval = min(0.5, $timeout / 4);
    }

    /* Keep $sid alive from now on, renewing it with a call of $op made with it as the caller
       (docs/behaviour.md §3: every such call renews), with $params as the other parts
       ('<self>': $sid). The expiration time extendSession returns is checked too. */
    function add($sid, $op = 'validateSession', array $params = []) {
        $this->last[$sid] = microtime(true);
        $this->how[$sid] = [$op, $params];
        return $sid;
    }

    function drop($sid) {
        unset($this->last[$sid], $this->how[$sid]);
    }

    private function renewOne($sid) {
        [$op, $params] = $this->how[$sid];
        if ($op === 'validateSession') {
            return $this->s->validate($sid) === true;
        }
        $params = array_map(function ($x) use ($sid) { return $x === '<self>' ? $sid : $x; }, $params);
        [$r, $code] = $this->s->tryCall($op, ['sessionId' => $sid] + $params);
        if ($code === 'INVALID_SESSION') {
            return false;
        }
        if ($op !== 'extendSession') {
            if ($code !== null || ($op === 'confirmId' && ($r->confirmed ?? null) !== true)) {
                check(false, "$op renews the session", show([$code, $r]));
            }
            return true;
        }
        $exp = xsd_secs($r->expirationTime ?? null);
        $gap = $exp === null ? null : $exp - microtime(true) - $this->timeout;
        if ($code !== null || $gap === null || abs($gap) > 1) {
            check(false, 'extendSession returns now + timeout', show([$code, $r]));
        }
        return true;
    }

    function renew($what) {
        foreach (array_keys($this->last) as $sid) {
            $gap = microtime(true) - $this->last[$sid];
            if (!$this->renewOne($sid)) {
                if ($gap < 0.75 * $this->timeout) {
                    check(false, $what, sprintf('session expired although renewed %.2fs earlier (timeout %ss)', $gap, $this->timeout));
                } else {
                    check(false, $what, sprintf('machine too slow for this test: %.2fs between two renewals with a %ss timeout; '
                                                . 'set SESSIOND_TEST_EXPIRY_TIMEOUT higher, e.g. 5s', $gap, $this->timeout));
                }
                throw new Abort('kept-alive session expired');
            }
            $this->last[$sid] = microtime(true);
        }
    }

    function wait($seconds, $what) {
        $end = microtime(true) + $seconds;
        while (microtime(true) < $end) {
            usleep((int)(min($this->interval, max(0, $end - microtime(true))) * 1e6));
            $this->renew($what);
        }
        check(true, $what);
    }

    /* Log in (an Argon2 hash: may be slow), then renew the kept sessions at once. */
    function login($user, $password, $bw = false) {
        $sid = $this->s->login($user, $password, $bw);
        $this->renew('kept-alive sessions still valid after a login');
        return $sid;
    }
}

/* Server started with SESSIOND_SESSION_TIMEOUT=<timeout> (option timeout=SECONDS, default 2).
   Roles: updater (UpdateSessionRight), alice. */
function scenario_expiry(Sessiond $s, array $roles, array $options) {
    [$updater, $updaterPw] = role($roles, 'updater');
    [$alice, $alicePw] = role($roles, 'alice');
    $timeout = (float)($options['timeout'] ?? 2);
    $keep = new KeepAlive($s, $timeout);

    $admin = $keep->add($s->login($updater, $updaterPw));
    $adminBw = $keep->add($keep->login($updater, $updaterPw, true));
    $s1 = $keep->add($keep->login($alice, $alicePw));
    $s2 = $keep->login($alice, $alicePw, true);
    $keep->wait($timeout * 1.25, 'a session renewed by validateSession stays valid past the timeout');
    $keep->drop($s1);
    $keep->wait($timeout * 1.5, 'sessions renewed by validateSession stay valid');

    check($s->validate($s1) === false, 'expired session: validateSession is false');
    check($s->validate($s2) === false, 'expired bw session: validateSession is false');
    $s->fault('INVALID_SESSION', 'listActiveSessionIds', ['sessionId' => $s1], 'expired caller session: INVALID_SESSION');
    $keep->renew('kept-alive sessions still valid');
    $s->arrayCheck('getExpiredSessionIds', $admin, [$s1, $s2], false, 'expired sessions listed, then nil');
    $s->arrayCheck('getExpiredSessionIds', $adminBw, [$s1, $s2], true, 'expired sessions listed (bw caller), no nil');
    $s->arrayCheck('listActiveSessionIds', $admin, [$admin, $adminBw], false, 'expired sessions are not active');

    $r = $s->call('deleteExpiredSessionIds', ['sessionId' => $admin]);
    check(($r->deletedCount ?? null) === 2, 'deleteExpiredSessionIds returns the count (2)', show($r));
    $s->arrayCheck('getExpiredSessionIds', $admin, [], false, 'after deleteExpiredSessionIds: one nil element');
    $s->arrayCheck('getExpiredSessionIds', $adminBw, [], true, 'after deleteExpiredSessionIds (bw caller): no element');
    $r = $s->call('deleteExpiredSessionIds', ['sessionId' => $adminBw]);
    check(($r->deletedCount ?? null) === 0, 'second deleteExpiredSessionIds returns 0', show($r));

    $keep->renew('kept-alive sessions still valid');
    $s3 = $keep->login($alice, $alicePw);
    $keep->wait($timeout * 1.5, 'sessions renewed by validateSession stay valid');
    $s->arrayCheck('getExpiredSessionIds', $admin, [$s3], false, 'newly expired session listed');
    $s4 = $keep->login($alice, $alicePw);
    $s->arrayCheck('getExpiredSessionIds', $admin, [], false, 'getSession removed the expired sessions');
    $s->arrayCheck('listActiveSessionIds', $admin, [$admin, $adminBw, $s4], false, 'active sessions after getSession');
}

/* Roles: alice, bob (no rights needed). */
function scenario_lockout(Sessiond $s, array $roles, array $options) {
    [$alice, $alicePw] = role($roles, 'alice');
    [$bob, $bobPw] = role($roles, 'bob');

    for ($i = 1; $i <= 5; $i++) {
        $s->fault('AUTHENTICATION_FAILED', $i % 2 ? 'getSession' : 'getBWSession',
                  ['userId' => $alice, 'password' => "wrong-$i"], "wrong password #$i: AUTHENTICATION_FAILED");
    }
    $s->fault('ACCOUNT_LOCKED', 'getSession', ['userId' => $alice, 'password' => $alicePw],
              'right password after 5 failures: ACCOUNT_LOCKED');
    $s->fault('ACCOUNT_LOCKED', 'getBWSession', ['userId' => $alice, 'password' => $alicePw],
              'getBWSession with the right password after 5 failures: ACCOUNT_LOCKED');
    $b = $s->login($bob, $bobPw);
    check($s->validate($b) === true, 'another user is not locked');
}

/* Scenario extended: the nine operations beyond the legacy set. The server runs with
   SESSIOND_LOCATION=<location option> and a 30 minute timeout. Roles: alice, bob, carol (no
   right), viewer (ViewSessionRight), updater (UpdateSessionRight), admin and admin2
   (AdministratorRight, no department), deptadmin (AdministratorRight with a department),
   plain (no right), dave (disabled before the start). Reports "# sid NAME ID" lines for
   scenario after_cli. */
function scenario_extended(Sessiond $s, array $roles, array $options) {
    [$alice, $alicePw] = role($roles, 'alice');
    [$bob, $bobPw] = role($roles, 'bob');
    [$carol, $carolPw] = role($roles, 'carol');
    [$viewer, $viewerPw] = role($roles, 'viewer');
    [$updater, $updaterPw] = role($roles, 'updater');
    [$admin, $adminPw] = role($roles, 'admin');
    [$admin2, $admin2Pw] = role($roles, 'admin2');
    [$deptadmin, $deptadminPw] = role($roles, 'deptadmin');
    [$plain, $plainPw] = role($roles, 'plain');
    [$dave, $_] = role($roles, 'dave');
    $loc = $options['location'] ?? usage('missing location=NAME');
    $lo = microtime(true) - 3;
    $created = function () use ($lo) { return [$lo, microtime(true) + 3]; };

    // startSession
    $erp = $s->info('startSession', ['userId' => $alice, 'password' => $alicePw,
                                     'clientType' => 'erp', 'clientName' => 'SAP ERP – Produktion']);
    check_info($erp, ['userId' => $alice, 'clientType' => 'erp', 'clientName' => 'SAP ERP – Produktion',
                      'location' => $loc, 'isCurrent' => true, 'created' => $created()],
               'startSession with clientType and clientName: the SessionInfo');
    $erpId = $erp->sessionId ?? '';
    $std = $s->info('startSession', ['userId' => $alice, 'password' => $alicePw]);
    check_info($std, ['userId' => $alice, 'clientType' => 'standard', 'location' => $loc, 'isCurrent' => true,
                      'created' => $created()],
               'startSession without the optionals: clientType standard, clientName nil');
    $stdId = $std->sessionId ?? '';
    check($erpId !== $stdId && $s->validate($erpId) === true && $s->validate($stdId) === true,
          'startSession sessions are distinct and valid');
    $wrong = $s->fault('AUTHENTICATION_FAILED', 'startSession', ['userId' => $alice, 'password' => 'wrong'],
                       'startSession with a wrong password: AUTHENTICATION_FAILED');
    $unknown = $s->fault('AUTHENTICATION_FAILED', 'startSession', ['userId' => 'nobody', 'password' => $alicePw],
                         'startSession for an unknown user: AUTHENTICATION_FAILED');
    if ($wrong && $unknown) {
        check(fault_message($wrong) === fault_message($unknown), 'startSession: one message for both failures');
    }

    // getCurrentSession
    $cur = $s->info('getCurrentSession', ['sessionId' => $erpId]);
    check_info($cur, ['sessionId' => $erpId, 'userId' => $alice, 'clientType' => 'erp',
                      'clientName' => 'SAP ERP – Produktion', 'location' => $loc, 'isCurrent' => true,
                      'created' => $created()],
               'getCurrentSession describes the caller, isCurrent true');
    check(($cur->creationTime ?? null) === ($erp->creationTime ?? 1), 'getCurrentSession: same creationTime as startSession');
    $s->fault('INVALID_SESSION', 'getCurrentSession', ['sessionId' => BOGUS], 'getCurrentSession(unknown): INVALID_SESSION');

    // extendSession
    usleep(600000);
    $before = microtime(true);
    $r = $s->call('extendSession', ['sessionId' => $erpId]);
    $after = microtime(true);
    $exp = xsd_secs($r->expirationTime ?? null);
    check($exp !== null && $exp >= $before + 1799 && $exp <= $after + 1801,
          'extendSession returns now + 30 min as an xs:dateTime string', show($r));
    check($exp !== null && $exp - (xsd_secs($cur->expirationTime ?? null) ?? INF) >= 0.5,
          'extendSession moves the expiration time', show([$cur->expirationTime ?? null, $r]));
    $again = $s->info('getCurrentSession', ['sessionId' => $erpId]);
    check(xsd_secs($again->lastActivityTime ?? null) >= $exp - 1800 - 0.001,
          'lastActivityTime renewed by extendSession', show([$again, $r]));
    $s->fault('INVALID_SESSION', 'extendSession', ['sessionId' => BOGUS], 'extendSession(unknown): INVALID_SESSION');

    // getSessions
    $v = $s->login($viewer, $viewerPw);
    $b1 = $s->login($bob, $bobPw);
    $vbw = $s->login($viewer, $viewerPw, true);
    $everyone = [$erpId, $stdId, $v, $b1, $vbw];
    $s->arrayCheck('getSessions', $v, $everyone, false,
                   'getSessions (view right, no filter): every session in creation order, then nil');
    $want = [$erpId => [$alice, 'erp', 'SAP ERP – Produktion'], $stdId => [$alice, 'standard', null],
             $v => [$viewer, 'standard', null], $b1 => [$bob, 'standard', null], $vbw => [$viewer, 'bw', null]];
    foreach ($want as $id => [$u, $type, $name]) {
        check_info($s->lastById[$id] ?? null, ['sessionId' => $id, 'userId' => $u, 'clientType' => $type,
                                               'clientName' => $name, 'location' => $loc,
                                               'isCurrent' => $id === $v, 'created' => $created()],
                   "getSessions: SessionInfo of the $u $type session");
    }
    $s->arrayCheck('getSessions', $v, [$erpId, $stdId], false, 'getSessions filterUserId', ['filterUserId' => $alice]);
    $s->arrayCheck('getSessions', $v, [$erpId], false, 'getSessions filterClientType', ['filterClientType' => 'erp']);
    $s->arrayCheck('getSessions', $v, [$b1], false, 'getSessions filterSessionId', ['filterSessionId' => $b1]);
    $s->arrayCheck('getSessions', $v, [$stdId], false, 'getSessions filterUserId and filterClientType',
                   ['filterUserId' => $alice, 'filterClientType' => 'standard']);
    $s->arrayCheck('getSessions', $v, [], false, 'getSessions matching nothing: one nil element',
                   ['filterUserId' => $bob, 'filterSessionId' => $erpId]);
    $s->arrayCheck('getSessions', $v, $everyone, false, 'getSessions includeExpired=false', ['includeExpired' => false]);
    $ordered = array_values(array_filter($s->ids('getSessions', $v), function ($x) { return $x !== null; }));
    foreach ([[1, 2], [0, 1], [4, null], [null, 3], [0, 0], [9, null]] as [$off, $lim]) {
        $params = array_filter(['offset' => $off, 'limit' => $lim], function ($x) { return $x !== null; });
        $page = array_slice($ordered, $off ?? 0, $lim);
        $page[] = null;
        $got = $s->ids('getSessions', $v, $params);
        check($got === $page, 'getSessions ' . json_encode($params) . ': that page of the order, then nil',
              show([$got, $page]));
    }
    $s->fault('INVALID_REQUEST', 'getSessions', ['sessionId' => $v, 'offset' => -1], 'getSessions offset -1: INVALID_REQUEST');
    $s->fault('INVALID_REQUEST', 'getSessions', ['sessionId' => $v, 'limit' => -1], 'getSessions limit -1: INVALID_REQUEST');
    $s->arrayCheck('getSessions', $vbw, $everyone, true, 'getSessions (getBWSession caller): no nil element');
    $s->arrayCheck('getSessions', $vbw, [], true, 'getSessions empty (getBWSession caller): no element',
                   ['filterUserId' => 'nobody']);
    $s->arrayCheck('getSessions', $erpId, [$erpId, $stdId], false, 'getSessions without a view right: own sessions only');
    $s->arrayCheck('getSessions', $erpId, [], false, "getSessions without a view right: another user's session is not found",
                   ['filterSessionId' => $b1]);
    $s->fault('ACCESS_DENIED', 'getSessions', ['sessionId' => $erpId, 'filterUserId' => $bob],
              'getSessions filterUserId naming another user without a view right: ACCESS_DENIED');
    $bwStart = $s->info('startSession', ['userId' => $alice, 'password' => $alicePw, 'clientType' => 'bw']);
    $s->arrayCheck('getSessions', $bwStart->sessionId ?? '', [$erpId, $stdId, $bwStart->sessionId ?? ''], true,
                   'getSessions (startSession clientType bw caller): no nil element');
    $s->fault('INVALID_SESSION', 'getSessions', ['sessionId' => BOGUS], 'getSessions with an unknown session: INVALID_SESSION');

    // getSessionInfo / getSessionUser: rights
    $viewers = [];
    foreach ([[$viewer, $viewerPw], [$updater, $updaterPw], [$admin, $adminPw], [$deptadmin, $deptadminPw]] as [$u, $pw]) {
        $sid = $viewers[] = $s->login($u, $pw);
        check_info($s->info('getSessionInfo', ['sessionId' => $sid, 'targetSessionId' => $erpId]),
                   ['sessionId' => $erpId, 'userId' => $alice, 'clientType' => 'erp',
                    'clientName' => 'SAP ERP – Produktion', 'location' => $loc, 'isCurrent' => false],
                   "getSessionInfo of another user's session by $u");
        $r = $s->call('getSessionUser', ['sessionId' => $sid, 'targetSessionId' => $erpId]);
        check(($r->userId ?? null) === $alice, "getSessionUser of another user's session by $u", show($r));
        $s->fault('SESSION_NOT_FOUND', 'getSessionInfo', ['sessionId' => $sid, 'targetSessionId' => BOGUS],
                  "getSessionInfo of an unknown session by $u: SESSION_NOT_FOUND");
    }
    $p = $s->login($plain, $plainPw);
    $s->fault('ACCESS_DENIED', 'getSessionInfo', ['sessionId' => $p, 'targetSessionId' => $erpId],
              "getSessionInfo of another user's session without a view right: ACCESS_DENIED");
    $s->fault('ACCESS_DENIED', 'getSessionUser', ['sessionId' => $p, 'targetSessionId' => $erpId],
              "getSessionUser of another user's session without a view right: ACCESS_DENIED");
    check_info($s->info('getSessionInfo', ['sessionId' => $p, 'targetSessionId' => $p]),
               ['sessionId' => $p, 'userId' => $plain, 'clientType' => 'standard', 'location' => $loc, 'isCurrent' => true],
               'getSessionInfo of its own session without a view right');
    $r = $s->call('getSessionUser', ['sessionId' => $erpId, 'targetSessionId' => $stdId]);
    check(($r->userId ?? null) === $alice, "getSessionUser of the user's other session without a view right", show($r));
    $s->fault('INVALID_SESSION', 'getSessionInfo', ['sessionId' => BOGUS, 'targetSessionId' => $erpId],
              'getSessionInfo with an unknown session: INVALID_SESSION');

    // ended sessions: closed, deleted
    $t0 = microtime(true) - 1;
    check($s->close($stdId) === true, 'closeSession before getSessionInfo');
    $u = $s->login($updater, $updaterPw);
    $s->call('deleteSessionId', ['sessionId' => $u, 'targetSessionId' => $b1]);
    $t1 = microtime(true) + 1;
    $closed = $s->info('getSessionInfo', ['sessionId' => $v, 'targetSessionId' => $stdId]);
    check_info($closed, ['sessionId' => $stdId, 'userId' => $alice, 'clientType' => 'standard', 'location' => $loc,
                         'isCurrent' => false, 'live' => false], 'getSessionInfo of a closed session');
    check_ended($closed, 'closed', $t0, $t1, 'closed session: endReason closed, endTime');
    $deleted = $s->info('getSessionInfo', ['sessionId' => $v, 'targetSessionId' => $b1]);
    check_ended($deleted, 'deleted', $t0, $t1, 'deleted session: endReason deleted, endTime');
    $r = $s->call('getSessionUser', ['sessionId' => $v, 'targetSessionId' => $b1]);
    check(($r->userId ?? null) === $bob, 'getSessionUser of a deleted session', show($r));
    check_ended($s->info('getSessionInfo', ['sessionId' => $erpId, 'targetSessionId' => $stdId]), 'closed', $t0, $t1,
                'getSessionInfo of its own closed session without a view right');
    $s->fault('ACCESS_DENIED', 'getSessionInfo', ['sessionId' => $erpId, 'targetSessionId' => $b1],
              "getSessionInfo of another user's ended session without a view right: ACCESS_DENIED");
    // (SoapClient leaves optionals passed as null out of the request.)
    $s->arrayCheck('getSessions', $v, array_merge([$erpId, $v, $vbw, $bwStart->sessionId ?? ''], $viewers, [$p, $u]), false,
                   'ended sessions are not listed by getSessions',
                   ['includeExpired' => true, 'filterUserId' => null, 'filterClientType' => null]);

    // confirmId and the lock-out
    $sb = $s->login($bob, $bobPw);
    $confirm = function ($pw) use ($s, $sb) {
        $r = $s->call('confirmId', ['sessionId' => $sb, 'password' => $pw]);
        return $r->confirmed ?? null;
    };
    check($confirm($bobPw) === true, 'confirmId with the right password is true');
    check($confirm('wrong') === false, 'confirmId with a wrong password is false (no fault)');
    check($confirm($bobPw) === true, 'confirmId with the right password after a failure is true');
    $s->fault('INVALID_SESSION', 'confirmId', ['sessionId' => BOGUS, 'password' => $bobPw], 'confirmId(unknown): INVALID_SESSION');
    $ok = true;
    for ($i = 0; $i < 4; $i++) {
        $ok = $confirm("wrong-$i") === false && $ok;
    }
    check($ok && $confirm($bobPw) === true, 'confirmId: 4 failures then the right password is true');
    $ok = true;
    for ($i = 0; $i < 5; $i++) {
        $ok = $confirm("wrong-$i") === false && $ok;
    }
    check($ok, 'five wrong confirmIds are false');
    $s->fault('ACCOUNT_LOCKED', 'getSession', ['userId' => $bob, 'password' => $bobPw],
              'getSession after five wrong confirmIds: ACCOUNT_LOCKED');
    $s->fault('ACCOUNT_LOCKED', 'startSession', ['userId' => $bob, 'password' => $bobPw],
              'startSession after five wrong confirmIds: ACCOUNT_LOCKED');
    [$r, $code] = $s->tryCall('confirmId', ['sessionId' => $sb, 'password' => $bobPw]);
    check($code === 'ACCOUNT_LOCKED' || ($code === null && ($r->confirmed ?? null) === false),
          'confirmId with the right password of a locked user is not true', show([$code, $r]));

    // openClientlessSession / closeClientlessSession
    $adm = $s->login($admin, $adminPw);
    $r = $s->call('openClientlessSession', ['sessionId' => $adm, 'userId' => $alice, 'clientName' => 'nightly batch']);
    $cl = $r->clientlessSessionId ?? '';
    check(preg_match('/^[A-Za-z0-9_~.\-]{22,64}$/', $cl) === 1, 'openClientlessSession returns a session ID', show($r));
    $cl2 = $s->call('openClientlessSession', ['sessionId' => $adm, 'userId' => $alice])->clientlessSessionId ?? '';
    $cl3 = $s->call('openClientlessSession', ['sessionId' => $adm, 'userId' => $alice])->clientlessSessionId ?? '';
    check(count(array_unique([$cl, $cl2, $cl3])) === 3 && $s->validate($cl) === true && $s->validate($cl2) === true,
          'clientless sessions are distinct and valid');
    check_info($s->info('getSessionInfo', ['sessionId' => $adm, 'targetSessionId' => $cl]),
               ['sessionId' => $cl, 'userId' => $alice, 'clientType' => 'clientless', 'clientName' => 'nightly batch',
                'createdBy' => $admin, 'location' => $loc, 'isCurrent' => false, 'created' => $created()],
               'clientless session: clientType clientless, createdBy the opener');
    check_info($s->info('getSessionInfo', ['sessionId' => $adm, 'targetSessionId' => $cl2]),
               ['sessionId' => $cl2, 'userId' => $alice, 'clientType' => 'clientless', 'createdBy' => $admin,
                'location' => $loc, 'isCurrent' => false],
               'clientless session without clientName: clientName nil');
    check_info($s->info('getCurrentSession', ['sessionId' => $cl]),
               ['sessionId' => $cl, 'userId' => $alice, 'clientType' => 'clientless', 'clientName' => 'nightly batch',
                'createdBy' => $admin, 'location' => $loc, 'isCurrent' => true],
               'a clientless session calls getCurrentSession');
    $s->arrayCheck('getSessions', $adm, [$cl, $cl2, $cl3], false, 'getSessions lists the clientless sessions',
                   ['filterClientType' => 'clientless']);
    $others = [$deptadmin => $s->login($deptadmin, $deptadminPw), $viewer => $v, $updater => $u, $plain => $p,
               $alice => $erpId];
    foreach ($others as $name => $sid) {
        $s->fault('ACCESS_DENIED', 'openClientlessSession', ['sessionId' => $sid, 'userId' => $alice],
                  "openClientlessSession by $name: ACCESS_DENIED");
    }
    $s->fault('INVALID_REQUEST', 'openClientlessSession', ['sessionId' => $adm, 'userId' => 'nobody'],
              'openClientlessSession for an unknown user: INVALID_REQUEST');
    $s->fault('INVALID_REQUEST', 'openClientlessSession', ['sessionId' => $adm, 'userId' => $dave],
              'openClientlessSession for a disabled user: INVALID_REQUEST');
    foreach ($others as $name => $sid) {
        $s->fault('ACCESS_DENIED', 'closeClientlessSession', ['sessionId' => $sid, 'clientlessSessionId' => $cl],
                  "closeClientlessSession by $name (not the opener): ACCESS_DENIED");
    }
    check($s->validate($cl) === true, 'clientless session still valid after denied closes');
    $t0 = microtime(true) - 1;
    $r = $s->call('closeClientlessSession', ['sessionId' => $s->login($admin2, $admin2Pw), 'clientlessSessionId' => $cl2]);
    check(($r->closed ?? null) === true, 'closeClientlessSession by another admin without department is true', show($r));
    $r = $s->call('closeClientlessSession', ['sessionId' => $adm, 'clientlessSessionId' => $cl]);
    check(($r->closed ?? null) === true, 'closeClientlessSession by the opener is true', show($r));
    $t1 = microtime(true) + 1;
    check($s->validate($cl) === false && $s->validate($cl2) === false, 'closed clientless sessions are invalid');
    $ended = $s->info('getSessionInfo', ['sessionId' => $adm, 'targetSessionId' => $cl]);
    check_info($ended, ['sessionId' => $cl, 'userId' => $alice, 'clientType' => 'clientless', 'clientName' => 'nightly batch',
                        'createdBy' => $admin, 'location' => $loc, 'isCurrent' => false, 'live' => false],
               'getSessionInfo of a closed clientless session');
    check_ended($ended, 'closed', $t0, $t1, 'closed clientless session: endReason closed');
    $r = $s->call('closeClientlessSession', ['sessionId' => $adm, 'clientlessSessionId' => $cl]);
    check(($r->closed ?? null) === false, 'closeClientlessSession of a closed session is false', show($r));
    $r = $s->call('closeClientlessSession', ['sessionId' => $adm, 'clientlessSessionId' => BOGUS]);
    check(($r->closed ?? null) === false, 'closeClientlessSession of an unknown session is false', show($r));
    $s->fault('INVALID_REQUEST', 'closeClientlessSession', ['sessionId' => $adm, 'clientlessSessionId' => $erpId],
              'closeClientlessSession of a session that is not clientless: INVALID_REQUEST');
    check($s->validate($erpId) === true, 'the non-clientless session is still valid');

    // For scenario after_cli (after `user disable carol` and `user revoke admin AdministratorRight`).
    $c1 = $s->login($carol, $carolPw);
    $c2 = $s->info('startSession', ['userId' => $carol, 'password' => $carolPw, 'clientName' => 'carol 2'])->sessionId ?? '';
    foreach (['viewer' => $v, 'admin' => $adm, 'clientless' => $cl3, 'carol1' => $c1, 'carol2' => $c2] as $name => $id) {
        echo "# sid $name $id\n";
    }
}

/* Scenario after_cli: run after scenario extended, once `sessiond user disable carol` and
   `sessiond user revoke admin AdministratorRight` ran. Options sid.viewer, sid.admin,
   sid.clientless, sid.carol1, sid.carol2 (from extended's "# sid" lines); roles carol, admin. */
function scenario_after_cli(Sessiond $s, array $roles, array $options) {
    [$carol, $carolPw] = role($roles, 'carol');
    [$admin, $_] = role($roles, 'admin');
    $sid = $options['sid'] ?? [];
    foreach (['viewer', 'admin', 'clientless', 'carol1', 'carol2'] as $k) {
        if (!isset($sid[$k])) {
            usage("missing sid.$k=ID");
        }
    }
    $v = $sid['viewer'];
    foreach (['carol1' => null, 'carol2' => 'carol 2'] as $k => $name) {
        $info = $s->info('getSessionInfo', ['sessionId' => $v, 'targetSessionId' => $sid[$k]]);
        check_info($info, ['sessionId' => $sid[$k], 'userId' => $carol, 'clientType' => 'standard',
                           'clientName' => $name, 'isCurrent' => false, 'live' => false],
                   "getSessionInfo of a disabled user's session ($k)");
        check_ended($info, 'user-disabled', microtime(true) - 120, microtime(true) + 1,
                    "disabled user's session ($k): endReason user-disabled");
        $r = $s->call('getSessionUser', ['sessionId' => $v, 'targetSessionId' => $sid[$k]]);
        check(($r->userId ?? null) === $carol, "getSessionUser of a disabled user's session ($k)", show($r));
        check($s->validate($sid[$k]) === false, "disabled user's session ($k) is invalid");
    }
    $s->fault('INVALID_SESSION', 'getCurrentSession', ['sessionId' => $sid['carol1']],
              "getCurrentSession of a disabled user's session: INVALID_SESSION");
    $s->fault('INVALID_SESSION', 'extendSession', ['sessionId' => $sid['carol2']],
              "extendSession of a disabled user's session: INVALID_SESSION");
    $s->fault('AUTHENTICATION_FAILED', 'startSession', ['userId' => $carol, 'password' => $carolPw],
              'startSession of a disabled user: AUTHENTICATION_FAILED');

    $s->fault('ACCESS_DENIED', 'openClientlessSession', ['sessionId' => $sid['admin'], 'userId' => $carol],
              'openClientlessSession after losing AdministratorRight: ACCESS_DENIED');
    $r = $s->call('closeClientlessSession', ['sessionId' => $sid['admin'], 'clientlessSessionId' => $sid['clientless']]);
    check(($r->closed ?? null) === true, 'the opener closes its clientless session after losing the right', show($r));
    check($s->validate($sid['clientless']) === false, 'that clientless session is then invalid');
}

/* Scenario extended_expiry: server with SESSIOND_SESSION_TIMEOUT=<timeout>. Roles: viewer
   (ViewSessionRight), alice. */
function scenario_extended_expiry(Sessiond $s, array $roles, array $options) {
    [$viewer, $viewerPw] = role($roles, 'viewer');
    [$alice, $alicePw] = role($roles, 'alice');
    $timeout = (float)($options['timeout'] ?? 2);
    $keep = new KeepAlive($s, $timeout);

    $v = $keep->add($s->login($viewer, $viewerPw));
    $ext = $s->info('startSession', ['userId' => $alice, 'password' => $alicePw, 'clientName' => 'kept alive'])->sessionId ?? '';
    $keep->add($ext, 'extendSession');
    $keep->renew('kept-alive sessions still valid after a login');
    // Sessions kept alive by other extended operations alone.
    $others = [];
    foreach ([['getCurrentSession', []], ['getSessions', []], ['getSessionUser', ['targetSessionId' => '<self>']],
              ['getSessionInfo', ['targetSessionId' => '<self>']], ['confirmId', ['password' => $alicePw]]] as [$op, $params]) {
        $others[] = $keep->add($keep->login($alice, $alicePw), $op, $params);
    }
    $idle = $s->info('startSession', ['userId' => $alice, 'password' => $alicePw, 'clientType' => 'batch'])->sessionId ?? '';
    $keep->renew('kept-alive sessions still valid after a login');
    $keep->wait($timeout * 1.5, 'sessions renewed by extendSession, getCurrentSession, getSessions, getSessionUser, '
                . 'getSessionInfo or confirmId alone stay valid past the timeout');

    $s->fault('INVALID_SESSION', 'extendSession', ['sessionId' => $idle], 'extendSession of an expired session: INVALID_SESSION');
    $s->fault('INVALID_SESSION', 'getCurrentSession', ['sessionId' => $idle], 'getCurrentSession of an expired session: INVALID_SESSION');
    $s->fault('INVALID_SESSION', 'extendSession', ['sessionId' => $idle], 'extendSession again: still INVALID_SESSION');
    check($s->validate($idle) === false, 'extendSession did not revive the expired session');
    $keep->renew('kept-alive sessions still valid');

    $info = $s->info('getSessionInfo', ['sessionId' => $v, 'targetSessionId' => $ext]);
    check_info($info, ['sessionId' => $ext, 'userId' => $alice, 'clientType' => 'standard', 'clientName' => 'kept alive',
                       'isCurrent' => false, 'timeout' => $timeout],
               'getSessionInfo of the session kept alive by extendSession');
    check(xsd_secs($info->lastActivityTime ?? null) - xsd_secs($info->creationTime ?? null) >= $timeout,
          'extendSession renewed lastActivityTime', show($info));
    $s->arrayCheck('getSessions', $v, array_merge([$v, $ext], $others), false, 'getSessions: the expired session is not listed');
    $s->arrayCheck('getSessions', $v, array_merge([$v, $ext], $others, [$idle]), false,
                   'getSessions includeExpired: the expired session is listed', ['includeExpired' => true]);
    $stored = $s->lastById[$idle] ?? null;
    check_info($stored, ['sessionId' => $idle, 'userId' => $alice, 'clientType' => 'batch', 'isCurrent' => false,
                         'timeout' => $timeout],
               'getSessions includeExpired: SessionInfo of the expired session');
    check(xsd_secs($stored->expirationTime ?? null) < microtime(true), 'its expirationTime is past', show($stored));
    $keep->renew('kept-alive sessions still valid');

    // startSession, like getSession, removes expired sessions.
    $removedAt = microtime(true);
    $fresh = $s->info('startSession', ['userId' => $alice, 'password' => $alicePw])->sessionId ?? '';
    $keep->renew('kept-alive sessions still valid after a login');
    $info = $s->info('getSessionInfo', ['sessionId' => $v, 'targetSessionId' => $idle]);
    check_info($info, ['sessionId' => $idle, 'userId' => $alice, 'clientType' => 'batch', 'isCurrent' => false,
                       'timeout' => $timeout, 'live' => false],
               'getSessionInfo of an expired session removed by a login');
    check(($info->endReason ?? null) === 'expired', 'removed expired session: endReason expired', show($info));
    $end = xsd_secs($info->endTime ?? null);
    check($end !== null && abs($end - xsd_secs($info->expirationTime ?? null)) <= 0.001 && $end < $removedAt - 0.5,
          'removed expired session: endTime is its expiration time, not the removal time',
          show([$info->endTime ?? null, $info->expirationTime ?? null, $removedAt]));
    $r = $s->call('getSessionUser', ['sessionId' => $v, 'targetSessionId' => $idle]);
    check(($r->userId ?? null) === $alice, 'getSessionUser of a removed expired session', show($r));
    $s->arrayCheck('getSessions', $v, array_merge([$v, $ext], $others, [$fresh]), false,
                   'getSessions includeExpired after the removal', ['includeExpired' => true]);
    $keep->renew('kept-alive sessions still valid');
}

// ---------------------------------------------------------------------------------------------

if ($argc < 4) {
    usage('missing arguments');
}
[$_, $wsdl, $version, $scenario] = $argv;
if ($version !== '1.1' && $version !== '1.2') {
    usage("SOAP version must be 1.1 or 1.2, got $version");
}
$roles = [];
$options = [];
foreach (array_slice($argv, 4) as $arg) {
    if (preg_match('/^timeout=(\d+(?:\.\d+)?)$/', $arg, $m)) {
        $options['timeout'] = $m[1];
    } elseif (preg_match('/^location=([\w.\-]+)$/', $arg, $m)) {
        $options['location'] = $m[1];
    } elseif (preg_match('/^sid\.(\w+)=([A-Za-z0-9_~.\-]+)$/', $arg, $m)) {
        $options['sid'][$m[1]] = $m[2];
    } elseif (preg_match('/^(\w+)=([^:]+):(.*)$/s', $arg, $m)) {
        $roles[$m[1]] = [$m[2], $m[3]];
    } else {
        usage("bad argument $arg");
    }
}
$fn = "scenario_$scenario";
if (!function_exists($fn)) {
    usage("unknown scenario $scenario");
}

try {
    $s = new Sessiond($wsdl, $version);
    $fn($s, $roles, $options);
} catch (Abort $e) {
    echo "# stopped: " . $e->getMessage() . "\n";
    echo "# passed $PASSED failed $FAILED\n";
    exit(1);
} catch (Throwable $e) {
    echo "not ok - unexpected " . get_class($e) . ': ' . $e->getMessage() . "\n";
    if (isset($s)) {
        echo "# last request: " . str_replace("\n", ' ', (string)$s->client->__getLastRequest()) . "\n";
        echo "# last response: " . str_replace("\n", ' ', (string)$s->client->__getLastResponse()) . "\n";
    }
    echo "# passed $PASSED failed " . ($FAILED + 1) . "\n";
    exit(2);
}
echo "# passed $PASSED failed $FAILED\n";
exit($FAILED === 0 ? 0 : 1);
