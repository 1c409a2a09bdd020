"""A request's body to ``ftlit serve``, read strictly within its limits: hostile bodies of every kind are refused
with 413 (too large, too many inputs, the limit named) or 400 (not strict JSON), never passed on to LitServe, where
deep nesting and unreadable text used to end in a RecursionError and a 500; the middleware refuses a body
announced too large before reading it, and passes a good one on as JSON whatever its declared type. That the real
server answers them so is tests/deploy/test_serve.py's."""

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ftlit.tools.request_body import MAX_DEPTH, BodyError, BodyLimits, StrictBody, nesting, read_body

LIMITS = BodyLimits(max_body_bytes=300_000, max_inputs=12)  # (the test server's too)


def wrapped(value: object, levels: int) -> object:
    """``value`` in ``levels`` lists."""
    for _ in range(levels):
        value = [value]
    return value


TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; a request nests 3 at most."
HOSTILE = {  # a body of each kind: (the body, the status, what the answer says); tests/deploy/test_serve.py's too
    "too large": (b"[" * 200_000 + b"]" * 200_000, 413,
                  "400000 bytes; this server reads at most 300000 bytes a request (--max_body_bytes)."),
    "a huge text": (json.dumps({"text": "a" * 300_000}).encode(), 413, "300012 bytes; this server reads at most"),
    "too many inputs": (json.dumps([{"text": "a"}] * 13).encode(), 413,
                        "13 inputs; this server answers at most 12 a request (--max_inputs): send them in several "
                        "requests."),
    "nested past the parser's limit": (b"[" * 100_000 + b"]" * 100_000, 400, TOO_DEEP),
    "nested past pickle's limit": (b"[" * 400 + b"]" * 400, 400, TOO_DEEP),
    "objects nested": (b'{"text": ' * 17 + b"1" + b"}" * 17, 400, TOO_DEEP),
    "nested in a field": (b'[{"words": ' + b"[" * 15 + b"]" * 15 + b"}]", 400, TOO_DEEP),
    "empty": (b"", 400, "not JSON (Expecting value"),
    "blank": (b"   ", 400, "not JSON (Expecting value"),
    "not UTF-8": (b'{"text": "caf\xe9"}', 400, "not JSON ('utf-8' codec can't decode byte 0xe9"),
    "single quotes": (b"{'text': 'single quotes'}", 400, "not JSON (Expecting property name"),
    "two objects": (b'{"text": "a"} {"text": "b"}', 400, "not JSON (Extra data"),
    "NaN": (b'{"text": NaN}', 400, "NaN is not JSON"),
    "-Infinity in a list": (b'[{"text": "a"}, {"text": -Infinity}]', 400, "-Infinity is not JSON"),
    "a key twice": (b'{"text": "good", "text": "bad"}', 400, "the key 'text' is given twice in one object"),
    "a key twice in a list": (b'[{"words": ["a"]}, {"words": ["b"], "words": []}]', 400,
                              "the key 'words' is given twice"),
    "a huge number": (b'{"text": ' + b"9" * 5000 + b"}", 400, "not JSON (Exceeds the limit (4300 digits)"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "status", "message"), HOSTILE.values(), ids=HOSTILE)
def test_a_hostile_body_is_refused_with_its_status_and_why(body, status, message):
    with pytest.raises(BodyError) as refused:
        read_body(body, LIMITS)
    assert refused.value.status == status and refused.value.field == "request"
    assert message in refused.value.detail


@pytest.mark.parametrize(
    "body",
    [
        {"text": "a fine film"},
        [{"text": "a"}] * 12,  # as many inputs as allowed
        [{"words": ["Ada", "Lovelace"]}],  # the deepest request: 3
        "great",  # a scalar is JSON: the request's own check names what it lacks (422)
        None,
        wrapped("deep", MAX_DEPTH),  # as deep as allowed: the fields' check refuses it (422)
    ],
)
def test_a_body_within_the_limits_is_read_as_its_json(body):
    assert read_body(json.dumps(body).encode(), LIMITS) == body


def test_a_body_in_utf16_is_read_as_json_reads_it():
    assert read_body('{"text": "café"}'.encode("utf-16"), LIMITS) == {"text": "café"}


def test_nesting_is_counted_without_recursion():
    assert [nesting(value) for value in ("a", 1, [], {}, [{}], {"a": [1, [2]]})] == [0, 0, 1, 1, 2, 3]
    assert nesting(wrapped("a", MAX_DEPTH)) == MAX_DEPTH
    # far deeper than Python's recursion limit; it stops once deep enough to refuse
    assert nesting(wrapped([], 2_000)) == MAX_DEPTH + 1


@pytest.fixture(scope="module")
def client():
    """The middleware before an app that echoes the JSON it receives and the type it was declared as."""

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"body": await request.json(), "type": request.headers["content-type"]})

    app = StrictBody(Starlette(routes=[Route("/predict", echo, methods=["POST"])]), LIMITS)
    return TestClient(app)


def test_the_middleware_answers_a_refused_body_with_its_status_and_field(client):
    answer = client.post("/predict", content=b"[" * 500 + b"]" * 500)
    assert answer.status_code == 400 and answer.json()["field"] == "request"
    assert answer.json()["error"] == f"request: {TOO_DEEP}"


def test_a_body_announced_too_large_is_refused_before_it_is_read(client):
    never_read = iter(())  # a body the client announces but whose bytes the middleware never asks for
    answer = client.post("/predict", content=never_read, headers={"Content-Length": "5000000"})
    assert answer.status_code == 413
    assert answer.json()["error"] == (
        "request: 5000000 bytes; this server reads at most 300000 bytes a request (--max_body_bytes)."
    )


def test_a_body_sent_in_chunks_is_refused_once_past_the_limit_without_reading_the_rest():
    chunks = [{"type": "http.request", "body": b"a" * 100_000, "more_body": True} for _ in range(10)]
    sent: list[dict] = []

    async def receive() -> dict:
        return chunks.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    async def never_called(scope, receive, send) -> None:
        raise AssertionError("a refused body reached the app")

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}  # (chunked: no Content-Length)
    asyncio.run(StrictBody(never_called, LIMITS)(scope, receive, send))
    assert sent[0]["status"] == 413 and len(chunks) == 6  # read: 4 chunks, the 4th past the limit
    assert json.loads(sent[1]["body"])["error"] == (
        "request: more than 300000 bytes; this server reads at most 300000 bytes a request (--max_body_bytes)."
    )


def test_a_good_body_goes_on_as_json_whatever_type_it_was_declared(client):
    for declared in ("application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        answer = client.post("/predict", content=b'{"text": "a"}', headers={"Content-Type": declared})
        assert answer.json() == {"body": {"text": "a"}, "type": "application/json"}, declared
