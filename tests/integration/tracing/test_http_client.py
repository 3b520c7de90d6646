"""The delivery client as the hosted PromptLayer needs it, against real servers on loopback:
TLS with our own CA (SSL_CERT_FILE / SSL_CERT_DIR), a CONNECT proxy and a plain one
(HTTPS_PROXY / HTTP_PROXY / NO_PROXY), gzip and deflate answers, redirects, bounded answers,
the User-Agent, and retries that never store a log twice where Idempotency-Key is ignored."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import importlib.metadata
import json
import logging
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from promptserve.tracing import BATCH_PATH, LogDelivery
from promptserve.tracing._http import (
    MAX_ANSWER_BYTES,
    HttpPool,
    RedirectError,
    TransportError,
    user_agent,
)
from promptserve.tracing._poster import UNCERTAIN, UNCERTAIN_FILE, Poster, log_outcome
from promptserve.tracing._proxy import bypassed, proxy_for
from promptserve.tracing._tls import verify_context
from tests.utils.tls_proxy import (
    CertificateAuthority,
    Reply,
    Seen,
    hashed_directory,
    http_proxy,
    make_ca,
    origin,
    reply,
)

TIMEOUTS: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 2.0}
CREATED = reply(201, b'{"id": 7}', {"Content-Type": "application/json"})
# A made-up name the proxies resolve to 127.0.0.1: reached only through a proxy (no DNS).
HOSTED = "promptlayer.test"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # LogDelivery reads the process environment: a developer's proxy must not leak in.
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return make_ca(tmp_path_factory.mktemp("ca"))


def always(answer: Reply) -> Callable[[Seen], Reply]:
    return lambda seen: answer


def poster(url: str, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Poster:
    options = {"attempt_timeout": 2.0, "backoff_initial": 0.01, "backoff_max": 0.05,
               "max_connections": 4, **kwargs}
    return Poster(base_url=url, api_key="k", environ=environ or {}, **options)


@contextlib.asynccontextmanager
async def pool_for(url: str, **kwargs: Any) -> AsyncIterator[HttpPool]:
    pool = HttpPool(url, max_connections=4, **kwargs)
    try:
        yield pool
    finally:
        await pool.aclose()


# -- TLS: our own CA, from SSL_CERT_FILE or SSL_CERT_DIR -----------------------------------------


async def test_ssl_cert_file_is_trusted_and_certifi_alone_refuses_our_ca(
    ca: CertificateAuthority,
) -> None:
    async with origin(always(CREATED), tls=ca.server_context("localhost")) as server:
        url = f"https://localhost:{server.port}"
        trusting = poster(url, {"SSL_CERT_FILE": str(ca.cert)})
        try:
            for _ in range(2):
                result = await trusting.post("/log-request", {"n": 1}, headers={}, what="log",
                                             budget=2.0)
                assert (result.status, result.body) == (201, {"id": 7})
        finally:
            await trusting.aclose()
        assert server.connections == 1  # keep-alive over TLS
        assert server.seen[0].headers["host"] == f"localhost:{server.port}"
        # Without it: certifi's bundle, which does not know our CA.
        async with pool_for(url, ssl_context=verify_context({})) as pool:
            with pytest.raises(TransportError) as caught:
                await pool.post("/log-request", b"{}", **TIMEOUTS)
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
        assert caught.value.stage == "connect"


async def test_ssl_cert_dir_is_trusted(ca: CertificateAuthority, tmp_path: Path) -> None:
    directory = hashed_directory(ca, tmp_path / "certs")
    async with origin(always(CREATED), tls=ca.server_context("localhost")) as server, \
            pool_for(f"https://localhost:{server.port}",
                     ssl_context=verify_context({"SSL_CERT_DIR": str(directory)})) as pool:
        assert (await pool.post("/", b"{}", **TIMEOUTS)).status == 201


def test_a_ca_file_that_cannot_be_read_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot load CA certificates"):
        poster("https://localhost:1", {"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


async def test_the_certificate_must_name_the_host(ca: CertificateAuthority) -> None:
    async with origin(always(CREATED), tls=ca.server_context("elsewhere.test")) as server, \
            pool_for(f"https://localhost:{server.port}",
                     ssl_context=verify_context({"SSL_CERT_FILE": str(ca.cert)})) as pool:
        with pytest.raises(TransportError) as caught:
            await pool.post("/", b"{}", **TIMEOUTS)
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


# -- proxies ---------------------------------------------------------------------------------


async def test_https_goes_through_a_connect_tunnel_from_https_proxy(
    ca: CertificateAuthority,
) -> None:
    async with origin(always(CREATED), tls=ca.server_context(HOSTED)) as server, \
            http_proxy(hosts={HOSTED: "127.0.0.1"}) as proxy:
        proxy_url = proxy.url.replace("http://", "http://user%40corp:p%3Ass@")
        env = {"HTTPS_PROXY": proxy_url, "SSL_CERT_FILE": str(ca.cert)}
        client = poster(f"https://{HOSTED}:{server.port}/api", env)
        try:
            for i in range(2):
                result = await client.post("/log-request", {"n": i},
                                           headers={"Idempotency-Key": f"k{i}"}, what="log",
                                           budget=2.0)
                assert result.ok
        finally:
            await client.aclose()
    # One tunnel, kept alive; the proxy saw the origin's name and port, and our credentials.
    assert proxy.connects == [f"{HOSTED}:{server.port}"] and proxy.relayed == []
    assert proxy.authorizations == ["Basic " + base64.b64encode(b"user@corp:p:ss").decode()]
    # Inside the tunnel, an ordinary origin-form request, verified against our CA.
    assert [s.target for s in server.seen] == ["/api/log-request"] * 2
    assert server.seen[0].headers["host"] == f"{HOSTED}:{server.port}"
    assert "proxy-authorization" not in server.seen[0].headers
    assert json.loads(server.seen[1].body) == {"n": 1}


async def test_plain_http_goes_to_the_proxy_in_absolute_form() -> None:
    async with origin(always(CREATED)) as server, \
            http_proxy(hosts={HOSTED: "127.0.0.1"}) as proxy:
        client = poster(f"http://{HOSTED}:{server.port}",
                        {"http_proxy": proxy.url.replace("http://", "http://u:p@")})
        try:
            assert (await client.post("/log-request", {}, headers={}, what="log",
                                      budget=2.0)).ok
        finally:
            await client.aclose()
    target = f"http://{HOSTED}:{server.port}/log-request"
    assert proxy.relayed == [f"POST {target} HTTP/1.1"] and proxy.connects == []
    assert server.seen[0].target == target
    assert server.seen[0].headers["proxy-authorization"] == "Basic " + \
        base64.b64encode(b"u:p").decode()


async def test_no_proxy_sends_the_origin_direct(ca: CertificateAuthority) -> None:
    async with origin(always(CREATED), tls=ca.server_context("127.0.0.1")) as server, \
            http_proxy() as proxy:
        url = f"https://127.0.0.1:{server.port}"
        for no_proxy, proxied in [("127.0.0.1", False), ("example.org, 127.0.0.0/8", False),
                                  (f"127.0.0.1:{server.port}", False), ("*", False),
                                  ("127.0.0.1:1", True), ("example.org", True)]:
            env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy,
                   "SSL_CERT_FILE": str(ca.cert)}
            before = len(proxy.connects)
            client = poster(url, env)
            try:
                assert (await client.post("/", {}, headers={}, what="log", budget=2.0)).ok
            finally:
                await client.aclose()
            assert (len(proxy.connects) > before) is proxied, no_proxy


@pytest.mark.parametrize(("host", "port", "no_proxy", "expected"), [
    ("api.promptlayer.com", 443, "promptlayer.com", True),
    ("api.promptlayer.com", 443, ".promptlayer.com", True),
    ("api.promptlayer.com", 443, "*.promptlayer.com", True),
    ("promptlayer.com", 443, "*.promptlayer.com", True),
    ("notpromptlayer.com", 443, "promptlayer.com", False),
    ("API.PromptLayer.com", 443, "api.promptlayer.com:443", True),
    ("api.promptlayer.com", 8443, "api.promptlayer.com:443", False),
    ("10.1.2.3", 80, "10.0.0.0/8", True),
    ("10.1.2.3", 80, "10.1.2.4", False),
    ("::1", 80, "::1", True),
    ("::1", 8080, "[::1]:8080", True),
    ("::1", 80, "[::1]:8080", False),
    ("10.1.2.3", 80, "example.org", False),
    ("example.org", 80, " , ", False),
])
def test_no_proxy_entries(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert bypassed(host, port, no_proxy) is expected


def test_which_variable_a_url_uses() -> None:
    env = {"HTTPS_PROXY": "upper:1", "https_proxy": "lower:2", "HTTP_PROXY": "plain:3",
           "ALL_PROXY": "all:4"}
    assert proxy_for("https://h", env).label == "lower:2"  # type: ignore[union-attr]
    assert proxy_for("http://h", env).label == "plain:3"  # type: ignore[union-attr]
    assert proxy_for("http://h", {"ALL_PROXY": "all:4"}).label == "all:4"  # type: ignore[union-attr]
    assert proxy_for("https://h", {"HTTP_PROXY": "plain:3"}) is None
    assert proxy_for("https://h", {"https_proxy": "", "HTTPS_PROXY": "upper:1"}).port == 1  # type: ignore[union-attr]


def test_a_proxy_we_cannot_speak_to_stops_start_up() -> None:
    for value in ("socks5://127.0.0.1:1080", "https://proxy.corp:443"):
        with pytest.raises(ValueError, match="only http:// proxies"):
            poster("https://api.promptlayer.com", {"HTTPS_PROXY": value})


async def test_a_proxy_that_refuses_connect_is_reported() -> None:
    async with http_proxy(refuse=407) as proxy:
        pool = HttpPool(f"https://{HOSTED}:443", max_connections=1,
                        proxy=proxy_for(f"https://{HOSTED}", {"HTTPS_PROXY": proxy.url}))
        try:
            with pytest.raises(TransportError, match="407.*credentials") as caught:
                await pool.post("/", b"{}", **TIMEOUTS)
        finally:
            await pool.aclose()
    assert caught.value.stage == "connect"  # nothing reached PromptLayer: safe to retry


# -- the request we send: User-Agent, Accept-Encoding ------------------------------------------


async def test_user_agent_and_accept_encoding_are_sent() -> None:
    async with origin(always(CREATED)) as server, pool_for(server.url) as pool:
        await pool.post("/", b"{}", **TIMEOUTS)
    version = importlib.metadata.version("promptserve")
    assert server.seen[0].headers["user-agent"] == f"promptserve/{version}" == user_agent()
    assert server.seen[0].headers["accept-encoding"] == "gzip, deflate"


# -- compressed answers, bounded answers ------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_are_decoded(coding: str) -> None:
    body = json.dumps({"id": 9, "pad": "x" * 5000}).encode()
    packed = {"gzip": gzip.compress(body), "deflate": zlib.compress(body),
              "raw-deflate": zlib.compress(body, wbits=-15)}[coding]
    name = "deflate" if coding == "raw-deflate" else coding
    answer = reply(201, packed, {"Content-Encoding": name, "Content-Type": "application/json"})
    async with origin(always(answer)) as server, pool_for(server.url) as pool:
        for _ in range(2):  # and the connection stays usable
            response = await pool.post("/", b"{}", **TIMEOUTS)
            assert response.body == body
            assert "content-encoding" not in response.headers
    assert server.connections == 1


@pytest.mark.parametrize(("answer", "connections"), [
    (reply(201, b"x" * (MAX_ANSWER_BYTES + 1)), 2),
    (reply(201, b"x" * (MAX_ANSWER_BYTES + 1), length=False), 2),  # ends at close
    (Reply(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"".join(b"10000\r\n" + b"x" * 0x10000 + b"\r\n" for _ in range(17))
           + b"0\r\n\r\n"), 2),
    # Read in full, so the connection is still in step (and reused); its body is refused.
    (reply(201, gzip.compress(b"\0" * (MAX_ANSWER_BYTES + 1)), {"Content-Encoding": "gzip"}),
     1),
    (reply(201, b"{}", {"Content-Encoding": "br"}), 1),  # not what we asked for
    (reply(201, b"not gzip", {"Content-Encoding": "gzip"}), 1),
], ids=["content-length", "until-close", "chunked", "gzip-bomb", "br", "bad-gzip"])
async def test_answers_too_large_or_undecodable_are_refused(answer: Reply,
                                                            connections: int) -> None:
    async with origin(always(answer)) as server, pool_for(server.url) as pool:
        for _ in range(2):
            with pytest.raises(TransportError) as caught:
                await pool.post("/", b"{}", **TIMEOUTS)
            assert caught.value.stage == "answer"  # the server acted: an answer came
    assert server.connections == connections  # one cut short is never reused


async def test_an_answer_just_within_the_bound_is_read() -> None:
    body = b"x" * MAX_ANSWER_BYTES
    async with origin(always(reply(201, body))) as server, pool_for(server.url) as pool:
        assert (await pool.post("/", b"{}", **TIMEOUTS)).body == body


# -- redirects ------------------------------------------------------------------------------


class Redirect:
    """Answers the first request with a redirect to `location`, every later one 201."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.location = ""
        self.count = 0

    def __call__(self, seen: Seen) -> Reply:
        self.count += 1
        return reply(self.status, headers={"Location": self.location}) if self.count == 1 \
            else CREATED


@pytest.mark.parametrize(("status", "location"), [(307, "/v2/log-request?x=1"),
                                                  (308, "{url}/v2/log-request?x=1")])
async def test_307_and_308_are_followed_with_the_body(status: int, location: str) -> None:
    redirect = Redirect(status)
    async with origin(redirect) as server:
        redirect.location = location.format(url=server.url)
        async with pool_for(server.url + "/api") as pool:
            response = await pool.post("/log-request", b'{"n": 1}',
                                       {"Idempotency-Key": "k"}, **TIMEOUTS)
    assert response.status == 201
    first, second = server.seen
    assert (first.method, first.target) == ("POST", "/api/log-request")
    assert (second.method, second.target) == ("POST", "/v2/log-request?x=1")
    assert second.body == first.body == b'{"n": 1}'
    assert second.headers["idempotency-key"] == "k"


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_a_redirect_that_would_turn_the_post_into_a_get_fails(status: int) -> None:
    async with origin(always(reply(status, headers={"Location": "/moved"}))) as server, \
            pool_for(server.url) as pool:
        with pytest.raises(RedirectError, match="POST would become a GET") as caught:
            await pool.post("/log-request", b"{}", **TIMEOUTS)
    assert (caught.value.status, caught.value.location) == (status, server.url + "/moved")
    assert [s.method for s in server.seen] == ["POST"]  # no GET, no second request


async def test_redirects_to_another_origin_or_in_a_loop_are_not_followed() -> None:
    async with origin(always(reply(307, headers={"Location": "https://elsewhere.test/x"}))) \
            as server, pool_for(server.url) as pool:
        with pytest.raises(RedirectError, match="another origin"):
            await pool.post("/", b"{}", **TIMEOUTS)
        assert len(server.seen) == 1
    async with origin(always(reply(307, headers={"Location": "/again"}))) as server, \
            pool_for(server.url) as pool:
        with pytest.raises(RedirectError, match="more than 5 redirects"):
            await pool.post("/", b"{}", **TIMEOUTS)
        assert len(server.seen) == 6


async def test_a_302_keeps_the_log_for_the_spool_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    moved = reply(302, headers={"Location": "https://new.promptlayer.test/log-request"})
    async with origin(always(moved)) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k", spool_dir=tmp_path,
                               wait_budget=0.3, backoff_initial=0.01, backoff_max=0.05)
        await delivery.start()
        with caplog.at_level(logging.WARNING, logger="promptserve.tracing._poster"):
            assert await delivery.submit({"n": 1}, idempotency_key="k1") is None
        stats = delivery.stats()
        await delivery.aclose()
    assert stats["rejected_total"] == 0 and stats["spooled_total"] == 1
    assert "HTTP 302 to https://new.promptlayer.test/log-request" in caplog.text
    assert "PROMPTLAYER_BASE_URL" in caplog.text
    assert {s.method for s in server.seen} == {"POST"}


# -- retries where Idempotency-Key is ignored (the hosted PromptLayer) ---------------------------


class Hosted:
    """The hosted service's shape: no batch route (404), and it stores every log it gets,
    repeats too (Idempotency-Key ignored). `script` answers the log posts in turn."""

    def __init__(self, *script: Reply) -> None:
        self.script = list(script)
        self.stored: list[bytes] = []

    def __call__(self, seen: Seen) -> Reply:
        if seen.target == BATCH_PATH:  # and a fresh connection for what follows
            return reply(404, b'{"detail": "Not Found"}', {"Connection": "close"})
        self.stored.append(seen.body)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step.stall or step.close:
            return step
        return Reply(CREATED.raw, delay=step.delay)


async def test_the_delivery_learns_at_start_that_the_backend_ignores_keys() -> None:
    hosted = Hosted(CREATED)
    async with origin(hosted) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k")
        await delivery.start()
        await delivery.flush(2.0)
        assert delivery._poster.keys_honoured is False
        assert delivery._poster.batch_route is False  # and never tries a batch
        await delivery.aclose()


async def test_a_slow_answer_is_awaited_not_sent_twice(tmp_path: Path) -> None:
    # The attempt timeout (0.2 s) is far below the answer's 0.6 s: a backend that dedupes
    # would get a second post; the hosted one gets one and its answer is waited for.
    hosted = Hosted(Reply(delay=0.6))
    async with origin(hosted) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k", spool_dir=tmp_path,
                               wait_budget=2.0, attempt_timeout=0.2, backoff_initial=0.01)
        await delivery.start()
        await delivery.flush(2.0)
        assert await delivery.submit({"n": 1}, idempotency_key="k1") == 7
        stats = delivery.stats()
        await delivery.aclose()
    assert len(hosted.stored) == 1
    assert stats["delivered_total"] == 1 and stats["uncertain_total"] == 0


async def test_no_answer_even_then_is_set_aside_not_resent(tmp_path: Path) -> None:
    hosted = Hosted(Reply(stall=True))
    uncertain = tmp_path / UNCERTAIN_FILE
    async with origin(hosted) as server:
        client = poster(server.url, attempt_timeout=0.2, confirm_timeout=0.4,
                        uncertain_file=uncertain)
        try:
            assert await client.learn_keys() is False
            result = await client.post("/log-request", {"n": 1},
                                       headers={"Idempotency-Key": "k1"}, what="log k1",
                                       budget=0.2)
        finally:
            await client.aclose()
    assert result.uncertain and not result.transient and result.body is UNCERTAIN
    assert log_outcome(result.status, result.body, transient=result.transient) == (None, False)
    assert len(hosted.stored) == 1 and client.uncertain == 1
    (kept,) = [json.loads(line) for line in uncertain.read_text().splitlines()]
    assert (kept["k"], kept["b"]) == ("k1", {"n": 1})
    assert "no answer within 0.4 s" in kept["why"]


async def test_the_delivery_counts_an_uncertain_log_and_does_not_spool_it(
    tmp_path: Path,
) -> None:
    hosted = Hosted(Reply(stall=True))
    async with origin(hosted) as server:
        delivery = LogDelivery(base_url=server.url, api_key="k", spool_dir=tmp_path,
                               wait_budget=2.0, attempt_timeout=0.2)
        delivery._poster._confirm_timeout = 0.4  # instead of a minute
        await delivery.start()
        await delivery.flush(2.0)
        assert await delivery.submit({"n": 1}, idempotency_key="k1") is None
        stats = delivery.stats()
        await delivery.aclose()
    assert len(hosted.stored) == 1
    assert stats["uncertain_total"] == 1
    assert stats["spooled_total"] == 0 and stats["rejected_total"] == 0
    assert (tmp_path / UNCERTAIN_FILE).exists()


async def test_a_connection_lost_before_any_answer_is_still_retried() -> None:
    hosted = Hosted(Reply(close=True), CREATED)  # closes unanswered, then answers
    async with origin(hosted) as server:
        client = poster(server.url, attempt_timeout=0.5)
        try:
            assert await client.learn_keys() is False
            result = await client.post("/log-request", {}, headers={"Idempotency-Key": "k"},
                                       what="log", budget=2.0)
        finally:
            await client.aclose()
    assert result.ok and len(hosted.stored) == 2


async def test_where_keys_are_honoured_a_timeout_is_retried_as_before() -> None:
    calls: list[Seen] = []

    def ours(seen: Seen) -> Reply:  # our backend: the batch route answers, repeats dedupe
        if seen.target == BATCH_PATH:
            return reply(200, b'{"results": []}')
        calls.append(seen)
        return Reply(stall=True) if len(calls) == 1 else CREATED

    async with origin(ours) as server:
        client = poster(server.url, attempt_timeout=0.2)
        try:
            assert await client.learn_keys() is True
            result = await client.post("/log-request", {}, headers={"Idempotency-Key": "k"},
                                       what="log", budget=2.0)
        finally:
            await client.aclose()
    assert result.ok and len(calls) == 2


async def test_an_unanswered_probe_leaves_it_unknown_and_quiet() -> None:
    async with origin(always(Reply(close=True))) as server:
        client = poster(server.url, attempt_timeout=0.5)
        try:
            assert await client.learn_keys() is None
        finally:
            await client.aclose()
    assert client.keys_honoured is None and client.failed_attempts == 0


def test_an_embedded_backend_honours_keys_without_asking() -> None:
    async def handler(body: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
        raise AssertionError("not called")

    client = poster("http://127.0.0.1:1", local={BATCH_PATH: handler})
    assert client.keys_honoured is True
    asyncio.run(client.aclose())
