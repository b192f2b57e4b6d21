<?php
/*
 * Interoperability checks of sessiond with PHP's SoapClient (ext-soap), through the served WSDL.
 *
 *   php session_client.php WSDL_URL SOAP_VERSION SCENARIO [role=user:password ...] [timeout=SECONDS]
 *
 *   WSDL_URL      e.g. http://127.0.0.1:PORT/services/SessionService?wsdl (SOAP 1.1)
 *                 or   http://127.0.0.1:PORT/services/SessionService?wsdl=soap12 (SOAP 1.2)
 *   SOAP_VERSION  1.1 or 1.2
 *   SCENARIO      basic | expiry | lockout (see the functions below for the roles each needs)
 *   timeout=N     expiry only: the server's SESSIOND_SESSION_TIMEOUT in seconds (default 2)
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
    fwrite(STDERR, "error: $msg\nusage: php session_client.php WSDL_URL 1.1|1.2 basic|expiry|lockout [role=user:password ...] [timeout=SECONDS]\n");
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

    /* Array result as a list of sessionId strings, with null for a nil element. */
    function ids($op, $caller) {
        $r = $this->call($op, ['sessionId' => $caller]);
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
    function arrayCheck($op, $caller, array $createdIds, $bw, $what) {
        $got = $this->ids($op, $caller);
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

    function __construct(Sessiond $s, $timeout) {
        $this->s = $s;
        $this->timeout = $timeout;
        $this->interval = min(0.5, $timeout / 4);
    }

    function add($sid) {
        $this->last[$sid] = microtime(true);
        return $sid;
    }

    function drop($sid) {
        unset($this->last[$sid]);
    }

    function renew($what) {
        foreach (array_keys($this->last) as $sid) {
            $gap = microtime(true) - $this->last[$sid];
            if ($this->s->validate($sid) !== true) {
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
