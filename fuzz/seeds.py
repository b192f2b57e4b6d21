#!/usr/bin/env python3
"""Writes the decode target's seed corpus: each of the contract's 17 operations in SOAP 1.1 and
1.2, in the shapes the API tests send (tests/api/helpers.rs envelope11/12 + operation(), and the
SoapUI, prefixed, xsi:type, nil and header forms of tests/api/protocol.rs). Deterministic, so
re-running it changes nothing; fuzz/corpus/decode/ is kept in the repository.
"""
import pathlib

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS = "urn:sessiond:session:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SID = "Q2xpZW50U2Vzc2lvbklkMDAwMDAwMDAwMDAwMDA"

# The operations in the WSDL's order, with their children (src/soap/request.rs).
OPS = [
    ("getSession", [("userId", "alice"), ("password", "pw-alice")]),
    ("getBWSession", [("userId", "alice"), ("password", "p&amp;w &lt;x&gt;")]),
    ("closeSession", [("sessionId", SID)]),
    ("validateSession", [("sessionId", SID)]),
    ("deleteSessionId", [("sessionId", SID), ("targetSessionId", SID + "x")]),
    ("deleteExpiredSessionIds", [("sessionId", SID)]),
    ("getExpiredSessionIds", [("sessionId", SID)]),
    ("listActiveSessionIds", [("sessionId", SID)]),
    ("startSession", [("userId", "bob"), ("password", "pw"), ("clientType", "desktop"), ("clientName", "Büro-PC")]),
    ("getSessions", [("sessionId", SID), ("filterSessionId", SID), ("filterUserId", "alice"),
                     ("filterClientType", "web"), ("includeExpired", "true"), ("offset", "+10"), ("limit", "500")]),
    ("getSessionInfo", [("sessionId", SID), ("targetSessionId", SID)]),
    ("getSessionUser", [("sessionId", SID), ("targetSessionId", SID)]),
    ("getCurrentSession", [("sessionId", SID)]),
    ("extendSession", [("sessionId", SID)]),
    ("confirmId", [("sessionId", SID), ("password", "pw-alice")]),
    ("openClientlessSession", [("sessionId", SID), ("userId", "batch"), ("clientName", "nightly")]),
    ("closeClientlessSession", [("sessionId", SID), ("clientlessSessionId", SID)]),
]


def helpers(op, fields, env):
    """tests/api/helpers.rs: envelope11/envelope12 around operation()."""
    p = "soap" if env == SOAP11 else "env"
    inner = f'<{op} xmlns="{NS}">' + "".join(f"<{n}>{v}</{n}>" for n, v in fields) + f"</{op}>"
    return f'<{p}:Envelope xmlns:{p}="{env}"><{p}:Body>{inner}</{p}:Body></{p}:Envelope>'


def soapui(op, fields, env):
    """SoapUI's shape: declaration, prefixed contract elements, an empty Header, pretty-printed."""
    kids = "".join(f"\n         <ses:{n}>{v}</ses:{n}>" for n, v in fields)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<soapenv:Envelope xmlns:soapenv="{env}" xmlns:ses="{NS}">\n'
            f'   <soapenv:Header/>\n   <soapenv:Body>\n      <!--Optional:-->\n'
            f'      <ses:{op}>{kids}\n      </ses:{op}>\n   </soapenv:Body>\n</soapenv:Envelope>\n')


def rpc(op, fields, env):
    """An rpc/encoded-style client: xsi:type on every child, encodingStyle, unqualified children."""
    kids = "".join(f'<{n} xsi:type="xsd:string">{v}</{n}>' for n, v in fields)
    return (f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{env}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:xsi="{XSI}"><SOAP-ENV:Body><ns1:{op} xmlns:ns1="{NS}" '
            f'SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">{kids}'
            f'</ns1:{op}></SOAP-ENV:Body></SOAP-ENV:Envelope>')


SPECIAL = {
    # Optional children nil, a must-understand header for another role, CDATA, a BOM.
    "getSessions-nil.xml": f'<s:Envelope xmlns:s="{SOAP11}" xmlns:xsi="{XSI}"><s:Body><getSessions xmlns="{NS}">'
    f'<sessionId>{SID}</sessionId><filterUserId xsi:nil="true"/><offset xsi:nil="1"></offset>'
    f'<limit>  7 </limit></getSessions></s:Body></s:Envelope>',
    "validate-header-actor.xml": f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Header><w:Security xmlns:w="urn:wsse" '
    f'soap:actor="urn:someone-else" soap:mustUnderstand="1"/><w:Trace xmlns:w="urn:t">x</w:Trace></soap:Header>'
    f'<soap:Body><validateSession><sessionId>{SID}</sessionId></validateSession></soap:Body></soap:Envelope>',
    "refused-must-understand12.xml": f'<env:Envelope xmlns:env="{SOAP12}"><env:Header><w:Security xmlns:w="urn:wsse" '
    f'env:mustUnderstand="true" env:role="http://www.w3.org/2003/05/soap-envelope/role/next"/></env:Header>'
    f'<env:Body><validateSession xmlns="{NS}"><sessionId>{SID}</sessionId></validateSession></env:Body></env:Envelope>',
    "getSession-cdata-refs.xml": f'<Envelope xmlns="{SOAP12}"><Body><getSession xmlns="{NS}"><userId>al&#x69;ce</userId>'
    f'<password><![CDATA[p<w>&]]>&amp;&#65;&quot;</password></getSession></Body></Envelope>',
    "refused-version-mismatch.xml": f'<soap:Envelope xmlns:soap="urn:not-soap"><soap:Body/></soap:Envelope>',
    "deep.xml": f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><validateSession>' + "<a>" * 60
    + "</a>" * 60 + f'<sessionId>{SID}</sessionId></validateSession></soap:Body></soap:Envelope>',
}

out = pathlib.Path(__file__).parent / "corpus" / "decode"
out.mkdir(parents=True, exist_ok=True)
for op, fields in OPS:
    for tag, env in (("11", SOAP11), ("12", SOAP12)):
        for style in (helpers, soapui, rpc):
            (out / f"{op}-{style.__name__}-{tag}.xml").write_text(style(op, fields, env), encoding="utf-8")
for name, text in SPECIAL.items():
    (out / name).write_text(text, encoding="utf-8")
(out / "bom-validate.xml").write_bytes(b"\xEF\xBB\xBF" + helpers("validateSession", OPS[3][1], SOAP11).encode())
