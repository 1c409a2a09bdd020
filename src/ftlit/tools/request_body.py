"""The body of a request to ``ftlit serve``, read strictly and within limits before LitServe sees it: a body larger
than ``--max_body_bytes`` or holding more than ``--max_inputs`` inputs is answered 413 with the limit, and one that
is not strict JSON (not UTF-8 text, a syntax error, ``NaN``, a key given twice, nesting deeper than any request) is
answered 400. So nothing a client sends reaches the work of the model unbounded, or the recursion limits of
LitServe's own JSON parsing and pickling (a ``RecursionError`` there is answered 500)."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi.responses import JSONResponse

from ftlit.errors import RequestError

#: Deeper than any request (a list of objects, each with a list of words, is 3), far below Python's recursion limit
MAX_DEPTH = 16
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; a request nests 3 at most."


@dataclass(frozen=True)
class BodyLimits:
    """What one request may hold. 1 MiB is nginx's default; a list of 10,000 sentences held MiniLM's only worker
    on a CPU for 74 s, so 64 hold it about half a second."""

    max_body_bytes: int = 1_048_576
    max_inputs: int = 64


class BodyError(RequestError):
    """A body refused as a whole, with its HTTP status: 413 (too large), 400 (not JSON a request can be)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__("request", detail)
        self.status = status


def check_size(size: int, limits: BodyLimits, *, complete: bool = True) -> None:
    """``size`` bytes (the whole body, or when not ``complete`` the part read so far) within the limit."""
    if size > limits.max_body_bytes:
        found = f"{size} bytes" if complete else f"more than {limits.max_body_bytes} bytes"
        raise BodyError(
            413, f"{found}; this server reads at most {limits.max_body_bytes} bytes a request (--max_body_bytes)."
        )


def read_body(raw: bytes, limits: BodyLimits) -> object:
    """The JSON value of a request's body, whole: refused with a :class:`BodyError` rather than read loosely."""
    check_size(len(raw), limits)
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:  # (the parser's own limit, some hundreds of levels deep)
        raise BodyError(400, TOO_DEEP) from None
    except ValueError as error:  # bytes that are not UTF-8 (or UTF-16/32) text, JSON syntax, a huge integer
        raise BodyError(400, f"not JSON ({error}).") from None
    if isinstance(body, list) and len(body) > limits.max_inputs:
        raise BodyError(
            413,
            f"{len(body)} inputs; this server answers at most {limits.max_inputs} a request (--max_inputs): "
            "send them in several requests.",
        )
    if nesting(body) > MAX_DEPTH:
        raise BodyError(400, TOO_DEEP)
    return body


def nesting(value: object) -> int:
    """How many lists and objects deep ``value`` is (0 for a string or a number); counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:  # (deep enough to refuse: no need to look further)
                break
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:  # (json would keep the last silently)
            raise BodyError(400, f"the key {key!r} is given twice in one object.")
        seen.add(key)
    return dict(pairs)


def _no_constant(name: str) -> object:
    raise BodyError(400, f"{name} is not JSON (a text is a string, and no request field is a number).")


class StrictBody:
    """ASGI middleware: each POST's body is read here, within the limits and strictly (see :func:`read_body`), and
    answered with its error when refused; otherwise it goes on as JSON, whatever its declared ``Content-Type``
    (``curl -d`` says form data, which LitServe would try to parse as a form)."""

    def __init__(self, app: Callable, limits: BodyLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        try:
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None:  # (refused before reading: the body may be gigabytes)
                check_size(int(declared), self.limits)
            body = await self._receive_body(receive)
            read_body(body, self.limits)
        except BodyError as error:
            response = JSONResponse({"error": str(error), "field": error.field}, status_code=error.status)
            return await response(scope, receive, send)
        headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
        replayed = False

        async def replay() -> dict:  # the body once, then whatever the connection says next (a disconnect)
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        json_scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(json_scope, replay, send)

    async def _receive_body(self, receive: Callable[[], Awaitable[dict]]) -> bytes:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            size, more = size + len(chunks[-1]), message.get("more_body", False)
            check_size(size, self.limits, complete=not more)
        return b"".join(chunks)
