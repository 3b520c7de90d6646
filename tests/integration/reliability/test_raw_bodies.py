"""Property-based runs over raw request bodies, not only schema-valid ones (test_schemas.py
keeps those), for every POST route of the service and of the embedded backend.

Bodies are bytes: random ones, valid bodies with one part replaced by something nobody
chose (NUL and lone-surrogate escapes, control characters, invalid UTF-8, nesting up to
10,000 levels, lists of mixed types, huge numbers, NaN), and valid bodies with bytes spliced
in. Whatever comes: never a 5xx, a 4xx says why, a stream ends with `event: end` (or with
LangServe's error event), and every 200 of a chain route has each of its logs stored exactly
once (looked up in the embedded backend's database).

Bounded: derandomised, a few dozen examples per test, the whole file in well under a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import orjson
import pytest
import sqlalchemy as sa
from hypothesis import strategies as st

from app.service import create_app, discover_chains
from promptserve.tracing._sanitize import SANITISED_KEY
from tests.integration.service.conftest import BACKEND_KEY, SERVICE_KEY, service_settings
from tests.utils.fake_openai import FakeOpenAI
from tests.utils.servers import serve_in_thread

# The chains served by default and the variable each one's input needs.
CHAINS = {"/example": "product", "/critique": "product", "/extract": "text",
          "/tools": "question"}
ENDPOINTS = ("invoke", "batch", "stream", "stream_log", "stream_events")
STREAMS = ("stream", "stream_log", "stream_events")
# LangServe's config-hash spelling of every endpoint (N4XyA: an empty config).
PREFIXES = ("", "/c/N4XyA")

# Every POST route of the embedded backend (checked against its OpenAPI schema and the
# dashboard's forms by test_every_route_is_covered).
BACKEND_ROUTES = (
    "/log-request", "/log-request/batch", "/track-request", "/rest/track-request",
    "/prompt-templates/example", "/rest/prompt-templates", "/library-track-score",
    "/rest/track-score", "/library-track-metadata", "/rest/track-metadata",
    "/library-track-prompt", "/rest/track-prompt", "/create-group", "/rest/create-group",
    "/track-group", "/rest/track-group", "/v1/traces", "/dashboard/login", "/dashboard/logout",
    # A/B releases (docs/RELEASES.md): promote/rollback, a label; a split (PUT), a move (PATCH).
    "/rest/releases/example/prod/promote", "/prompts/1/label",
    "/rest/releases/example/prod", "/prompt-labels/1",
)
# Routes of BACKEND_ROUTES that take another method than POST.
BACKEND_METHODS = {"/rest/releases/example/prod": "PUT", "/prompt-labels/1": "PATCH"}
DASHBOARD_FORMS = ("/dashboard/login", "/dashboard/logout")

HYPOTHESIS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [hypothesis.HealthCheck.too_slow,
                              hypothesis.HealthCheck.data_too_large,
                              hypothesis.HealthCheck.filter_too_much],
    # No explain phase: its source analysis of a failing example is slow, and adds nothing
    # the failing body does not already say.
    "phases": [hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
}


# -- raw JSON -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Bytes written into a body as they are (tokens no encoder writes)."""

    data: bytes


@dataclass(frozen=True)
class Deep:
    """`levels` nested containers, written without recursion."""

    levels: int
    open: bytes
    close: bytes


def encode(value: Any) -> bytes:
    """`value` as JSON bytes: strings with \\uXXXX escapes for NUL and lone surrogates."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Deep):
        return value.open * value.levels + b"1" + value.close * value.levels
    if isinstance(value, dict):
        return b"{" + b",".join(encode(str(k)) + b":" + encode(v)
                                for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    return json.dumps(value).encode()  # ensure_ascii: any str, lone surrogates included


ODD_CHARS = ["\x00", "\ud800", "\udfff", "\ud83d", "\udc00", "\x01", "\x1f", "\x7f", "\x85",
             "\u2028", "\ufeff", "\ufffd", "\U0001f600", "²", "\\", '"', "{x}", "{{", "}",
             "%s", "é", "\n", " "]
odd_text = st.lists(st.one_of(st.sampled_from(ODD_CHARS), st.text(max_size=4)),
                    max_size=5).map("".join)
odd_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([Raw(b"NaN"), Raw(b"Infinity"), Raw(b"-Infinity"), Raw(b"1e999"),
                     Raw(b"-1e999"), Raw(b"1e-400"), Raw(b"-0"), Raw(b"1" + b"0" * 400),
                     Raw(b"1" + b"0" * 5000), Raw(b"9223372036854775808")]),
)
odd_strings = st.sampled_from([
    Raw(b'"\xff"'), Raw(b'"\xed\xa0\x80"'), Raw(b'"\xc0\x80"'), Raw(b'"\xe2\x82"'),
    Raw(b'"\\ud800\\ud800"'), Raw(b'"\\udc00\\ud800"'), Raw(b'"\\u0000"'), Raw(b'"\\x"'),
])
deep = st.builds(
    lambda levels, shape: Deep(levels, *shape),
    st.sampled_from([50, 99, 100, 101, 150, 200, 201, 254, 256, 600, 1000, 10_000]),
    st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")]),
)
leaves = st.one_of(st.none(), st.booleans(), odd_numbers, odd_text, odd_strings, deep)
values = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(odd_text, children, max_size=4)),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn, valid: Any, depth: int = 0) -> Any:
    """`valid` with one part replaced by an odd value, or an odd part added."""
    choice = draw(st.integers(0, 3)) if depth < 6 else 0
    if isinstance(valid, dict) and valid and choice >= 2:
        key = draw(st.sampled_from(list(valid)))
        return {**valid, key: draw(mutated(valid[key], depth + 1))}
    if isinstance(valid, list) and valid and choice >= 2:
        index = draw(st.integers(0, len(valid) - 1))
        return [*valid[:index], draw(mutated(valid[index], depth + 1)), *valid[index + 1:]]
    if isinstance(valid, dict) and choice == 1:
        return {**valid, draw(odd_text): draw(values)}
    if isinstance(valid, list) and choice == 1:
        return [*valid, draw(values)]
    return draw(values)


@st.composite
def spliced(draw: st.DrawFn, raw: bytes) -> bytes:
    """`raw` with a few random bytes put in, or cut short."""
    at = draw(st.integers(0, len(raw)))
    if draw(st.booleans()):
        return raw[:at]
    return raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]


def bodies(valid: Any) -> st.SearchStrategy[bytes]:
    """Raw bodies around the valid body `valid`."""
    return st.one_of(
        mutated(valid).map(encode),
        mutated(valid).map(encode),
        mutated(valid).map(encode),
        spliced(encode(valid)),
        values.map(encode),
        st.binary(max_size=200),
    )


# -- the service ----------------------------------------------------------------------------


@dataclass
class Served:
    """A running service, its database, and a stored request to point bodies at."""

    url: str
    engine: sa.Engine
    request_id: int

    def logs_of(self, run_id: str) -> list[tuple[int, dict[str, Any]]]:
        """(id, metadata) of every stored log of root run `run_id`."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, metadata FROM requests WHERE metadata LIKE :pattern"),
                {"pattern": f"%{run_id}%"},
            ).all()
        found = []
        for request_id, metadata in rows:
            meta = metadata if isinstance(metadata, dict) else json.loads(metadata)
            if meta.get("_langchain_root_run_id") == run_id:
                found.append((request_id, meta))
        return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           fake_llm: tuple[FakeOpenAI, str]) -> Iterator[Served]:
    settings = service_settings(tmp_path_factory.mktemp("raw-bodies"), fake_llm[1])
    # /failing's model answers 500 by design: a 5xx, rightly.
    chains = [c for c in discover_chains(templates_dir=settings.templates_dir)
              if c.path != "/failing"]
    app = create_app(settings, chains=chains)
    engine = sa.create_engine(settings.sqlalchemy_url)
    with serve_in_thread(app) as url:
        first = httpx.post(f"{url}/example/invoke", json={"input": {"product": "pens"}},
                           timeout=30)
        assert first.status_code == 200, first.text
        yield Served(url, engine, first.json()["metadata"]["promptlayer_request_id"])
    engine.dispose()


def _valid_chain_body(chain: str, endpoint: str) -> dict[str, Any]:
    value = "what is 6 times 7" if chain == "/tools" else "pens and ink"
    if endpoint == "batch":
        return {"inputs": [{CHAINS[chain]: value}, {CHAINS[chain]: "mugs"}], "config": {}}
    return {"input": {CHAINS[chain]: value}, "config": {}, "kwargs": {}}


def _json(raw: bytes | str) -> Any:
    """An answer's JSON, parsed without Python recursion (an answer may echo deep input)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise AssertionError(f"the answer is not JSON ({error}): {raw[:300]!r}") from None


def _post(url: str, raw: bytes, headers: dict[str, str] | None = None, *,
          method: str = "POST") -> httpx.Response:
    return httpx.request(method, url, content=raw, timeout=60,
                         headers={"content-type": "application/json", **(headers or {})})


@dataclass
class StreamAnswer:
    status: int
    events: list[tuple[str, str]]
    cut: bool  # the server closed the connection before the stream's end
    text: str


def _stream(url: str, raw: bytes) -> StreamAnswer:
    chunks: list[bytes] = []
    cut = False
    with httpx.stream("POST", url, content=raw, timeout=60,
                      headers={"content-type": "application/json"}) as response:
        try:
            for chunk in response.iter_raw():
                chunks.append(chunk)
        except httpx.RemoteProtocolError:
            cut = True
    text = b"".join(chunks).decode("utf-8", "replace")
    events = []
    if response.status_code == 200:
        for block in text.replace("\r\n", "\n").split("\n\n"):
            if not block.strip():
                continue
            name, data = "message", []
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            events.append((name, "\n".join(data)))
    return StreamAnswer(response.status_code, events, cut, text)


def _summaries(endpoint: str, payload: Any) -> list[dict[str, Any]]:
    """The id summaries of an answer: one per run."""
    if endpoint == "invoke":
        return [payload["metadata"]]
    if endpoint == "batch":
        return list(payload["metadata"]["responses"])
    return [payload]


def _stream_summary(endpoint: str, events: list[tuple[str, str]]) -> dict[str, Any]:
    """The id event right before `end` (promptserve.server._responses._id_event)."""
    assert len(events) >= 2, events
    name, data = events[-2]
    payload = _json(data)
    if endpoint == "stream":
        assert name == "metadata", events[-2]
        return dict(payload)
    if endpoint == "stream_events":
        assert payload["event"] == "on_custom_event" and payload["name"] == "promptlayer"
        return dict(payload["data"])
    op = payload["ops"][-1]
    assert op["path"] == "/promptlayer", op
    return dict(op["value"])


def assert_logged_once(served: Served, summary: dict[str, Any]) -> None:
    """Every LLM call of the run has its log stored, once; the answer names them all."""
    run_id = summary["run_id"]
    ids = summary.get("promptlayer_request_ids")
    assert ids, f"a 200 without its log (run {run_id}): {summary}"
    deadline = time.monotonic() + 5
    while True:
        logs = served.logs_of(run_id)
        if len(logs) >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(request_id for request_id, _ in logs) == sorted(ids), (run_id, logs)
    calls = [meta["_langchain_run_id"] for _, meta in logs]
    assert len(calls) == len(set(calls)), f"a call logged twice: {calls}"


def check_chain_answer(served: Served, path: str, raw: bytes) -> None:
    """The property, for one body POSTed to one chain route."""
    endpoint = path.rsplit("/", 1)[-1]
    url = served.url + path
    if endpoint in STREAMS:
        answer = _stream(url, raw)
        assert answer.status < 500, (answer.status, answer.text[:500])
        if answer.status != 200:
            assert _json(answer.text)["detail"], answer.text
            return
        names = [name for name, _ in answer.events]
        if answer.cut or names[-1:] != ["end"]:
            # Only LangServe's error event may end a stream without `end`.
            assert "error" in names, (answer.cut, answer.events[-3:])
            return
        if "error" in names:
            return
        assert_logged_once(served, _stream_summary(endpoint, answer.events))
        return
    response = _post(url, raw)
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code != 200:
        assert _json(response.content)["detail"], response.text
        return
    for summary in _summaries(endpoint, _json(response.content)):
        assert_logged_once(served, summary)


# -- the properties -------------------------------------------------------------------------


CHAIN_ROUTES = [f"{chain}{prefix}/{endpoint}" for chain in CHAINS for prefix in PREFIXES
                for endpoint in ENDPOINTS]


@st.composite
def chain_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    chain = draw(st.sampled_from(list(CHAINS)))
    endpoint = draw(st.sampled_from(ENDPOINTS))
    prefix = draw(st.sampled_from(PREFIXES))
    return f"{chain}{prefix}/{endpoint}", draw(bodies(_valid_chain_body(chain, endpoint)))


@pytest.mark.timeout(120)
@hypothesis.settings(max_examples=140, **HYPOTHESIS)
@hypothesis.given(request=chain_requests())
def test_chain_routes_answer_any_body(served: Served, request: tuple[str, bytes]) -> None:
    path, raw = request
    check_chain_answer(served, path, raw)


def _valid_feedback(served: Served) -> dict[str, Any]:
    return {"request_id": served.request_id, "score": 50, "name": "tone", "comment": "fine",
            "feedback_token": "1.abc"}


# LangServe's own feedback route (LangSmith's; always refused here) takes bodies too.
FEEDBACK_ROUTES = ("/feedback", *(f"{chain}/token_feedback" for chain in CHAINS))


@pytest.mark.timeout(120)
@hypothesis.settings(max_examples=60, **HYPOTHESIS)
@hypothesis.given(data=st.data())
def test_feedback_answers_any_body(served: Served, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(FEEDBACK_ROUTES))
    valid = (_valid_feedback(served) if path == "/feedback"
             else {"token_or_url": "t", "score": 1, "comment": "c"})
    raw = data.draw(bodies(valid))
    with_key = data.draw(st.booleans())
    response = _post(f"{served.url}{path}", raw,
                     {"X-API-Key": SERVICE_KEY} if with_key else None)
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert _json(response.content)["detail"], response.text


LOG = {"provider": "openai", "model": "m", "input": {"type": "chat", "messages": [
    {"role": "user", "content": [{"type": "text", "text": "hello"}]}]},
    "output": {"type": "chat", "messages": []}, "tags": ["t"], "metadata": {"k": "v"},
    "parameters": {"temperature": 0.5}, "request_start_time": 1.0, "request_end_time": 2.0,
    "prompt_name": "example", "prompt_version_number": 1, "prompt_input_variables": {"p": "x"},
    "input_tokens": 3, "output_tokens": 4, "score": 5, "score_name": "s"}
BLUEPRINT = {"type": "chat", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "Say {thing}"}]}], "input_variables": ["thing"]}


def _valid_backend_body(path: str, request_id: int) -> Any:
    track = {"request_id": request_id}
    return {
        "/log-request": LOG,
        "/log-request/batch": {"requests": [{"idempotency_key": "k1", "body": LOG},
                                            {"body": LOG}]},
        "/track-request": {"function_name": "openai.chat.completions.create",
                           "provider_type": "openai", "args": [],
                           "kwargs": {"model": "m", "messages": [{"role": "user",
                                                                  "content": "hi"}]},
                           "request_response": {"usage": {"prompt_tokens": 1}},
                           "request_start_time": 1.0, "request_end_time": 2.0,
                           "tags": ["t"], "metadata": {"k": "v"}, "group_id": 1,
                           "return_prompt_blueprint": True},
        "/prompt-templates/example": {"version": 1, "label": "prod",
                                      "input_variables": {"product": "ink"},
                                      "model_parameter_overrides": {"temperature": 0.1}},
        "/rest/prompt-templates": {
            "prompt_template": {"prompt_name": "raw-bodies", "tags": ["t"]},
            "prompt_version": {"prompt_template": BLUEPRINT, "commit_message": "c",
                               "metadata": {"model": {"provider": "openai", "name": "m",
                                                      "parameters": {}}}},
            "release_labels": ["dev"]},
        "/library-track-score": {**track, "score": 5, "name": "s"},
        "/library-track-metadata": {**track, "metadata": {"k": "v"}},
        "/library-track-prompt": {**track, "prompt_name": "example", "version": 1,
                                  "prompt_input_variables": {"product": "x"}},
        "/create-group": {},
        "/track-group": {**track, "group_id": 1},
        "/v1/traces": {},
        "/dashboard/login": {},
        "/dashboard/logout": {},
        "/rest/releases/example/prod/promote": {"version": 1},
        "/prompts/1/label": {"prompt_version_number": 1, "name": "raw-bodies"},
        "/rest/releases/example/prod": {"arms": [{"version": 1, "weight": 100}],
                                        "control": 1, "guardrail": False, "alpha": 0.05,
                                        "segments": None},
        "/prompt-labels/1": {"prompt_version_number": 1},
    }[REST_SPELLINGS.get(path, path)]


# The /rest/ spelling of a route → the other one (same body).
REST_SPELLINGS = {"/rest/track-request": "/track-request",
                  "/rest/track-score": "/library-track-score",
                  "/rest/track-metadata": "/library-track-metadata",
                  "/rest/track-prompt": "/library-track-prompt",
                  "/rest/create-group": "/create-group", "/rest/track-group": "/track-group"}


def _backend_headers(path: str) -> dict[str, str]:
    if path in DASHBOARD_FORMS:
        return {"content-type": "application/x-www-form-urlencoded"}
    return {"X-API-KEY": BACKEND_KEY}


def check_backend_answer(served: Served, path: str, raw: bytes) -> None:
    response = _post(f"{served.url}/promptlayer{path}", raw, _backend_headers(path),
                     method=BACKEND_METHODS.get(path, "POST"))
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    if response.status_code >= 400 and path not in DASHBOARD_FORMS:
        assert _json(response.content)["message"], response.text


@pytest.mark.timeout(120)
@hypothesis.settings(max_examples=120, **HYPOTHESIS)
@hypothesis.given(data=st.data())
def test_backend_routes_answer_any_body(served: Served, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(BACKEND_ROUTES))
    raw = data.draw(bodies(_valid_backend_body(path, served.request_id)))
    check_backend_answer(served, path, raw)


# -- every class seen in the issue, on every route ------------------------------------------


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def _bad_bodies(valid: dict[str, Any]) -> dict[str, bytes]:
    """One body of each class the issue names, built on `valid`, with "VALUE" the slot."""
    good = encode(valid)
    assert b'"VALUE"' in good
    return {
        "invalid-utf8": good.replace(b'"VALUE"', b'"\xff\xfe"'),
        "encoded-surrogate": good.replace(b'"VALUE"', b'"\xed\xa0\x80"'),
        "surrogate-escape": good.replace(b'"VALUE"', b'"a\\ud800b"'),
        "deep": good.replace(b'"VALUE"', _deep(10_000)),
        "deep-600": good.replace(b'"VALUE"', _deep(600)),
        "nan": good.replace(b'"VALUE"', b"NaN"),
        "huge-float": good.replace(b'"VALUE"', b"1e999"),
        "huge-int": good.replace(b'"VALUE"', b"1" + b"0" * 5000),
        "mixed-list": good.replace(b'"VALUE"', b'[{"a": 1}, 1, "s", null, [1], 1e5]'),
        "not-an-object": b'["VALUE"]',
        "bare-bytes": b"\xff\xfe\x80",
    }


def _with_slot(body: Any, path: list[str | int]) -> Any:
    """`body` with the value at `path` replaced by "VALUE"."""
    if not path:
        return "VALUE"
    head, rest = path[0], path[1:]
    if isinstance(body, list):
        return [_with_slot(v, rest) if i == head else v for i, v in enumerate(body)]
    return {**body, head: _with_slot(body[head], rest)}


CHAIN_SLOTS = {"invoke": ["input", "VAR"], "batch": ["inputs", 0, "VAR"]}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", CHAIN_ROUTES)
def test_each_bad_class_is_a_4xx_on_each_chain_route(served: Served, path: str) -> None:
    chain, endpoint = "/" + path.split("/")[1], path.rsplit("/", 1)[-1]
    slot = [CHAINS[chain] if part == "VAR" else part
            for part in CHAIN_SLOTS.get(endpoint, CHAIN_SLOTS["invoke"])]
    for name, raw in _bad_bodies(_with_slot(_valid_chain_body(chain, endpoint), slot)).items():
        response = _post(served.url + path, raw)
        assert response.status_code == 422, (name, response.status_code, response.text[:300])
        assert _json(response.content)["detail"], (name, response.text)
    # `inputs` that are not a list, a batch `config` that is neither object nor list.
    if endpoint == "batch":
        for raw in (b'{"inputs": 5}', b'{"inputs": [], "config": 5}',
                    b'{"inputs": [{"a": 1}, 2], "config": [{}, 3]}'):
            response = _post(served.url + path, raw)
            assert response.status_code == 422, (raw, response.text[:300])


BACKEND_SLOTS: dict[str, list[str | int]] = {
    "/log-request": ["input", "messages", 0, "content", 0, "text"],
    "/log-request/batch": ["requests", 0, "body", "model"],
    "/track-request": ["kwargs", "model"],
    "/rest/track-request": ["kwargs", "model"],
    "/prompt-templates/example": ["input_variables", "product"],
    "/rest/prompt-templates": ["prompt_version", "commit_message"],
    "/library-track-score": ["name"],
    "/rest/track-score": ["name"],
    "/library-track-metadata": ["metadata", "k"],
    "/rest/track-metadata": ["metadata", "k"],
    "/library-track-prompt": ["prompt_input_variables", "product"],
    "/rest/track-prompt": ["prompt_input_variables", "product"],
    "/rest/releases/example/prod/promote": ["version"],
    "/prompts/1/label": ["name"],
    "/rest/releases/example/prod": ["arms", 0, "version"],
    "/prompt-labels/1": ["prompt_version_number"],
}
# Not refused for a bad body: create-group reads none, /v1/traces discards OTLP bytes,
# track-group's two ids are numbers (covered by the property run), the dashboard's forms.
UNREFUSED = {"/create-group", "/rest/create-group", "/v1/traces", "/track-group",
             "/rest/track-group", *DASHBOARD_FORMS}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", [p for p in BACKEND_ROUTES if p not in UNREFUSED])
def test_each_bad_class_is_a_400_on_each_backend_route(served: Served, path: str) -> None:
    valid = _with_slot(_valid_backend_body(path, served.request_id), BACKEND_SLOTS[path])
    bad = _bad_bodies(valid)
    del bad["mixed-list"]  # valid JSON: most of these slots take any (the property run)
    bad["nul-escape"] = encode(valid).replace(b'"VALUE"', b'"a\\u0000b"')
    for name, raw in bad.items():
        response = _post(f"{served.url}/promptlayer{path}", raw, _backend_headers(path),
                     method=BACKEND_METHODS.get(path, "POST"))
        if path == "/log-request/batch" and name in ("surrogate-escape", "nul-escape"):
            # Judged log by log: that log alone is refused, as /log-request would.
            assert response.status_code == 200, (name, response.text[:300])
            first, second = _json(response.content)["results"]
            assert first["status_code"] == 400 and "NUL" in first["body"]["message"], first
            assert second["status_code"] == 201, second
            continue
        assert response.status_code == 400, (name, response.status_code, response.text[:300])
        assert _json(response.content)["message"], (name, response.text)


@pytest.mark.timeout(60)
def test_each_bad_class_is_a_4xx_on_feedback(served: Served) -> None:
    bad = {}
    for field in ("comment", "name", "feedback_token"):
        valid = _with_slot(_valid_feedback(served), [field])
        bad.update({f"{field}:{k}": v for k, v in _bad_bodies(valid).items()})
        bad[f"{field}:nul"] = encode(valid).replace(b'"VALUE"', b'"a\\u0000b"')
    for token in ("\x01\x02\x03", "\x85\x85", "1.\x85", "².abc", "1.é", "\x00"):
        bad[f"token {token!r}"] = encode({**_valid_feedback(served), "feedback_token": token})
    bad["huge request id"] = encode({**_valid_feedback(served), "request_id": 2**64})
    for name, raw in bad.items():
        for headers in ({"X-API-Key": SERVICE_KEY}, {}):
            response = _post(f"{served.url}/feedback", raw, headers)
            assert 400 <= response.status_code < 500, (name, response.status_code,
                                                       response.text[:300])
            assert _json(response.content)["detail"], (name, response.text)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["/example/invoke", "/example/batch", "/example/stream",
                                  "/critique/stream_log", "/tools/stream_events"])
def test_nul_is_served_and_its_log_stored_sanitised(served: Served, path: str) -> None:
    chain, endpoint = "/" + path.split("/")[1], path.rsplit("/", 1)[-1]
    body = _valid_chain_body(chain, endpoint)
    slot = CHAIN_SLOTS.get(endpoint, CHAIN_SLOTS["invoke"])
    value = "6 times 7 \x00 and \x00" if chain == "/tools" else "pens \x00 and \x00 ink"
    raw = encode(_with_slot(body, [CHAINS[chain] if p == "VAR" else p for p in slot])
                 ).replace(b'"VALUE"', encode(value))
    if endpoint in STREAMS:
        answer = _stream(served.url + path, raw)
        assert answer.status == 200 and answer.events[-1][0] == "end", answer.text[-300:]
        summaries = [_stream_summary(endpoint, answer.events)]
    else:
        response = _post(served.url + path, raw)
        assert response.status_code == 200, response.text
        summaries = _summaries(endpoint, _json(response.content))
    for summary in summaries:
        assert_logged_once(served, summary)
    # The NUL is in the first input (of a batch's two).
    for request_id, metadata in served.logs_of(summaries[0]["run_id"]):
        assert metadata[SANITISED_KEY] == "true"
        with served.engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT input FROM requests WHERE id = :i"),
                                        {"i": request_id}).scalar_one()
        text = json.dumps(json.loads(stored) if isinstance(stored, str) else stored,
                          ensure_ascii=False)
        assert "\x00" not in text and "\ufffd" in text, text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["/example/invoke", "/example/stream", "/feedback",
                                  "/promptlayer/log-request", "/promptlayer/rest/track-score",
                                  "/promptlayer/log-request/batch"])
def test_an_oversize_chunked_body_is_413(served: Served, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 100_000  # 2 MB against the 1 MB default

    response = httpx.post(served.url + path, content=chunks(), timeout=60,
                          headers={"content-type": "application/json",
                                   "X-API-KEY": BACKEND_KEY})
    assert response.status_code == 413, response.text[:300]


def test_every_route_is_covered(served: Served) -> None:
    """A POST route added to the service or the backend must be added here too."""
    def posts(schema_url: str) -> set[str]:
        paths = httpx.get(schema_url, timeout=30).json()["paths"]
        return {path for path, operations in paths.items() if "post" in operations}

    service = posts(f"{served.url}/openapi.json")
    chains = {f"{chain}{prefix}/{endpoint}" for chain in CHAINS for endpoint in ENDPOINTS
              for prefix in ("", "/c/{config_hash}")}
    assert service - chains == set(FEEDBACK_ROUTES)
    backend = posts(f"{served.url}/promptlayer/openapi.json")
    templates = {"/prompt-templates/example": "/prompt-templates/{identifier}",
                 "/rest/releases/example/prod/promote": "/rest/releases/{rest}",
                 "/prompts/1/label": "/prompts/{prompt_id}/label"}
    documented = {templates.get(p, p) for p in BACKEND_ROUTES
                  if p not in DASHBOARD_FORMS and p not in BACKEND_METHODS}
    assert backend == documented
    schema = httpx.get(f"{served.url}/promptlayer/openapi.json", timeout=30).json()["paths"]
    others = {(method.upper(), path) for path, operations in schema.items()
              for method in operations if method in ("put", "patch")}
    assert others == {("PUT", "/rest/releases/{rest}"), ("PATCH", "/prompt-labels/{label_id}")}
