"""HTTP endpoints of the gateways, directly and through HAProxy: /healthz, /readyz, the web
client with its Content-Security-Policy, and the development token endpoint."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from chat_e2e import http_get, run, unique


def _ports(cluster):
    return [("haproxy", cluster.public_port)] + [
        (f"gateway :{p}", p) for p in cluster.gateway_ports
    ]


def test_healthz(cluster):
    for name, port in _ports(cluster):
        r = http_get(port, "/healthz")
        assert r.status == 200, f"{name} /healthz -> {r.status} {r.body[:200]!r}"
        assert r.body.strip() == b"ok", f"{name} /healthz body {r.body[:200]!r}"


def test_readyz(cluster):
    for name, port in _ports(cluster):
        r = http_get(port, "/readyz")
        assert r.status == 200, f"{name} /readyz -> {r.status} {r.body[:200]!r}"
        body = r.json()
        assert body.get("status") == "ready", f"{name} /readyz {body}"
        assert body.get("kafka") == "ok", f"{name} /readyz {body}"
        assert body.get("mongo") == "ok", f"{name} /readyz {body}"


class _PageScan(HTMLParser):
    """Collects <script> tags with their bodies and inline event-handler attributes."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.handlers: list[str] = []
        self.styles_inline = 0
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in a:
            if k.lower().startswith("on"):
                self.handlers.append(f"<{tag} {k}=...>")
        if tag == "script":
            self._in_script = {"attrs": a, "body": ""}
            self.scripts.append(self._in_script)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["body"] += data


def _check_security_headers(r, what):
    csp = r.headers.get("Content-Security-Policy")
    assert csp, f"{what}: no Content-Security-Policy header"
    assert "script-src 'self'" in csp, f"{what}: CSP {csp!r}"
    assert "default-src 'none'" in csp, f"{what}: CSP {csp!r}"
    assert "unsafe-inline" not in csp, f"{what}: CSP {csp!r}"
    assert r.headers.get("X-Content-Type-Options") == "nosniff", f"{what}: {dict(r.headers)}"
    assert r.headers.get("Referrer-Policy") == "no-referrer", f"{what}: {dict(r.headers)}"


def test_web_client_page(cluster):
    for name, port in _ports(cluster):
        r = http_get(port, "/")
        assert r.status == 200, f"{name} GET / -> {r.status}"
        assert "text/html" in (r.headers.get("Content-Type") or ""), f"{name}: {dict(r.headers)}"
        _check_security_headers(r, f"{name} GET /")

    r = http_get(cluster.public_port, "/")
    page = _PageScan()
    page.feed(r.body.decode("utf-8"))
    assert page.scripts, "the page loads no script"
    for s in page.scripts:
        assert s["attrs"].get("src"), f"inline <script> without src: {s}"
        assert not s["body"].strip(), f"<script src> with an inline body: {s}"
    assert not page.handlers, f"inline event handlers (blocked by the CSP): {page.handlers}"

    # every script the page loads is served, with the same headers
    for s in page.scripts:
        src = s["attrs"]["src"]
        if src.startswith(("http:", "https:", "//")):
            pytest.fail(f"page loads a script from elsewhere: {src}")
        path = src if src.startswith("/") else "/" + src
        rs = http_get(cluster.public_port, path)
        assert rs.status == 200, f"GET {path} -> {rs.status}"
        assert "javascript" in (rs.headers.get("Content-Type") or ""), f"GET {path}: {dict(rs.headers)}"
        _check_security_headers(rs, f"GET {path}")


def _jwt_part(token: str, i: int) -> dict:
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_dev_token(cluster):
    user = unique("dev.user_x")[:32]
    r = http_get(cluster.public_port, "/dev/token?user=" + quote(user))
    assert r.status == 200, f"/dev/token -> {r.status} {r.body[:300]!r}"
    body = r.json()
    assert body.get("user") == user, body
    assert body.get("expires_in") == 86400, body
    assert isinstance(body.get("warning"), str) and body["warning"], body
    token = body.get("token")
    assert isinstance(token, str) and token.count(".") == 2, body
    assert _jwt_part(token, 0).get("alg") == "HS256"
    claims = _jwt_part(token, 1)
    assert claims.get("sub") == user and isinstance(claims.get("exp"), int), claims

    async def main(net):
        c = await net.connect(token=token, how="header", name="dev-token user")
        assert c.welcome.get("user") == user, c.welcome
        await c.ping()

    run(main, cluster, timeout=30)


@pytest.mark.parametrize(
    "query",
    [
        "user=bad%20user",
        "user=" + "a" * 33,
        "user=",
        "user=a%2Fb",
        "user=%C3%A4",
        "user=%3Cscript%3E",
        "",
    ],
    ids=["space", "33-chars", "empty", "slash", "non-ascii", "html", "no-user"],
)
def test_dev_token_rejects_bad_user(cluster, query):
    r = http_get(cluster.public_port, "/dev/token" + (f"?{query}" if query else ""))
    assert r.status == 400, f"/dev/token?{query} -> {r.status} {r.body[:300]!r}"
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert "token" not in body, body


def test_dev_token_nul_in_user_issues_no_token(cluster):
    """libwebsockets drops a request whose URI decodes to a NUL before the gateway sees it
    (HAProxy then answers 502); whatever the status, no token is issued."""
    r = http_get(cluster.public_port, "/dev/token?user=a%00b")
    assert r.status != 200 and b"token" not in r.body, f"-> {r.status} {r.body[:300]!r}"


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/readyz", "/index.html", "/dev/token?user=hdr-check", "/dev/token?user=bad%20u",
     "/no-such-file.js", "/ws"],
)
def test_security_headers_on_every_response(cluster, path):
    for name, port in _ports(cluster):
        r = http_get(port, path)
        assert r.status < 500, f"{name} GET {path} -> {r.status}"
        _check_security_headers(r, f"{name} GET {path} ({r.status})")


def test_unknown_path_404(cluster):
    for name, port in _ports(cluster):
        for path in ("/no-such-file.js", "/nested/missing.html"):
            r = http_get(port, path)
            assert r.status == 404, f"{name} GET {path} -> {r.status}"


@pytest.mark.parametrize(
    "path",
    [
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/....//....//....//etc/passwd",
        "/../../CMakeLists.txt",
        "/%2e%2e/%2e%2e/CMakeLists.txt",
        "//etc/passwd",
    ],
)
def test_static_files_do_not_escape_the_web_root(cluster, path):
    for name, port in _ports(cluster):
        try:
            r = http_get(port, path)
        except OSError:
            continue  # connection dropped: nothing served
        body = r.body.decode("utf-8", errors="replace")
        assert "root:" not in body and "cmake_minimum_required" not in body, (
            f"{name} GET {path} -> {r.status} served a file outside the web root")
        assert r.status != 200 or "<html" in body.lower(), f"{name} GET {path} -> {r.status}: {body[:200]!r}"
