"""``ftlit serve EXPORT [--port 8000] [--host 127.0.0.1] [--engine torch|onnxruntime] [--max_batch_size 32]
[--batch_timeout 0.01] [--workers 1] [--max_inputs 64] [--max_body_bytes 1048576]``: an export answering HTTP
requests, on LitServe.

EXPORT is a run's output folder, its ``export/`` or an ONNX export (``ftlit export``). ``POST /predict`` takes one
JSON object — ``{"text": …}`` (and ``"text_pair"`` for sentence pairs), ``{"question": …, "context": …}``, or for
entities ``{"text": …}`` / ``{"words": [...]}`` — or a list of them, and answers what ``ftlit predict`` writes for
the same input (less the input itself): one object, or a list in the same order. Requests arriving together are
batched (up to --max_batch_size requests, waiting at most --batch_timeout seconds for more). A bad request is
answered 422 with ``{"error": …, "field": …}`` (400 for a body that is not strict JSON, 413 for one over
--max_body_bytes or with more than --max_inputs inputs); it never fails the requests batched with it. ``GET /health``
answers ``ok`` once the model is loaded, ``GET /info`` the task, the engine and the limits. SIGTERM or Ctrl-C stop
it cleanly (exit code 143 / 130). A retriever serves a corpus instead (below), with the same limits and answers to
bad requests.
"""

import argparse
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import litserve
from fastapi.responses import JSONResponse

from ftlit.errors import FtlitError, RequestError
from ftlit.settings import check_range
from ftlit.tools.corpus_serve import Service, add_corpus_options, check_corpus_settings, corpus_service, is_retriever
from ftlit.tools.corpus_serve import __doc__ as CORPUS_HELP
from ftlit.tools.prediction import ENGINES, Predictor
from ftlit.tools.request_body import BodyLimits, StrictBody
from ftlit.training.interrupts import handling, stopped

log = logging.getLogger(__name__)
HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds to
REQUEST_TIMEOUT = 30  # seconds a request may wait for its answer (LitServe's default), then 504
LOCAL_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # where this machine reaches a server on every address


class Answering(Protocol):
    """What answers an endpoint's requests: a :class:`Predictor`, or a search over a corpus."""

    def request_row(self, request: Mapping) -> dict: ...

    def predict(self, rows: list[dict]) -> list[dict]: ...


@dataclass
class Request:
    """One HTTP request on its way through a batch: its rows, or why it cannot be answered; then its answers."""

    rows: list[dict]
    single: bool  # one object (answered with one), not a list
    error: RequestError | None = None
    status: int = 422  # the error's: 500 when it is the server's fault, not the request's
    answers: list[dict] = field(default_factory=list)


def read_request(body: object, predictor: Answering) -> Request:
    """A request's body (parsed JSON) → its rows; a problem is kept (named by its field, ``[i].field`` in a list),
    not raised: raised, it would fail every request of the batch."""
    single = not isinstance(body, list)
    try:
        if not single and not body:
            raise RequestError("request", "an empty list: give one input or more.")
        rows = []
        for position, item in enumerate([body] if single else body):
            try:
                rows.append(predictor.request_row(item))
            except RequestError as error:
                if single:
                    raise
                raise RequestError(f"[{position}].{error.field}", error.detail) from None
    except RequestError as error:
        return Request([], single, error)
    return Request(rows, single)


def answer(requests: list[Request], predictor: Answering) -> None:
    """Predict the rows of every readable request in one go. A check that only the data module makes fails that
    go (or anything else does): then each request is answered alone, so that only its own fails."""
    readable = [request for request in requests if request.error is None]
    if not readable:
        return
    try:
        answers = predictor.predict([row for request in readable for row in request.rows])
    except Exception as error:
        if len(readable) > 1:
            for request in readable:
                answer([request], predictor)
        elif isinstance(error, FtlitError):
            readable[0].error = RequestError("request", str(error))
        else:  # a fault of the server's as far as ftlit can tell: a 500 for this request alone, its traceback logged
            log.exception("A request could not be answered")
            readable[0].error = RequestError("request", f"the server failed ({type(error).__name__}); see its log.")
            readable[0].status = 500
        return
    start = 0
    for request in readable:
        request.answers, start = answers[start : start + len(request.rows)], start + len(request.rows)


class PredictionAPI(litserve.LitAPI):
    """LitServe's API at ``path``: each worker loads what answers (``load(device)``, a module-level callable: the
    workers are spawned) in ``setup``; a batch of requests is answered together."""

    def __init__(
        self, load: Callable[[str], Answering], max_batch_size: int, batch_timeout: float, path: str = "/predict"
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path=path)
        self.load = load

    def setup(self, device: str) -> None:
        self.predictor = self.load(device)

    def decode_request(self, request) -> Request:
        return read_request(request, self.predictor)

    def batch(self, inputs: list[Request]) -> list[Request]:
        return inputs

    def predict(self, requests: list[Request] | Request) -> list[Request] | Request:
        answer(requests if isinstance(requests, list) else [requests], self.predictor)  # (a lone one unbatched)
        return requests

    def unbatch(self, output: list[Request]) -> list[Request]:
        return output

    def encode_response(self, request: Request):
        if request.error is not None:
            return JSONResponse({"error": str(request.error), "field": request.error.field}, status_code=request.status)
        return request.answers[0] if request.single else request.answers


class Server(litserve.LitServer):
    def __init__(self, *args, ready_message: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ready_message = ready_message

    def verify_worker_status(self) -> None:  # (returns once a worker has loaded the model)
        try:
            super().verify_worker_status()
        except KeyboardInterrupt:  # a stop while the workers load: LitServe stops them only once it serves
            for worker in self.inference_workers:
                worker.terminate()
            raise
        print(self.ready_message, flush=True)


def check_port(host: str, port: int) -> None:
    if not 1024 <= port <= 65535:
        raise FtlitError(f"--port {port}: from 1024 to 65535.")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise FtlitError(f"Cannot listen on {host}:{port} ({error.strerror}): choose another --port.") from None


def check_settings(known: argparse.Namespace) -> None:
    """The server's settings in their ranges, before anything is loaded."""
    for option in ("max_batch_size", "workers", "max_inputs", "max_body_bytes"):
        check_range(f"--{option}", getattr(known, option), minimum=1)
    # (LitServe requires a batch to be sent before its requests time out)
    check_range("--batch_timeout", known.batch_timeout, minimum=0, maximum=REQUEST_TIMEOUT, include_maximum=False)


def shut_down(main: int, received: list[int], signum: int, frame) -> None:
    """The server's handler of SIGTERM and SIGINT: both shut it down as Ctrl-C does in LitServe (it stops its workers
    then), noted in ``received`` for the exit code; in the processes it forks (``main`` is not theirs), they keep their
    usual meaning."""
    if os.getpid() != main:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    received.append(signum)
    raise KeyboardInterrupt


def prediction_service(
    known: argparse.Namespace, build: Callable[[list[str]], object], address: str, rest: list[str]
) -> Service:
    """``/predict`` of a task's export (``rest``: settings over its run's), loaded once here first: a problem with
    the export ends here, with its message, before any worker starts."""
    predictor = Predictor.from_export(known.source, build, known.engine, arguments=rest)
    example = json.dumps(predictor.example_request())
    ready = (
        f"ftlit serve: {predictor.task} ({predictor.engine}) at {address} — POST /predict, GET /health, GET /info.\n"
        f"  Try: curl --json '{example}' {address}/predict"
    )
    load = partial(Predictor.from_export, known.source, build, predictor.engine, arguments=rest)
    return {"/predict": load}, {"task": predictor.task, "engine": predictor.engine}, ready


def main(args: list[str], build: Callable[[list[str]], object]) -> int:
    """``build(arguments)``: the CLI (not run) on the arguments; a module-level callable (workers are spawned)."""
    parser = argparse.ArgumentParser(
        prog="ftlit serve",
        description=f"{__doc__}\n{CORPUS_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source", type=Path, help="a run's output folder, its export/, an ONNX export, or a retriever (below)"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", choices=HOSTS, default="127.0.0.1", help="0.0.0.0 or :: to listen beyond this host")
    parser.add_argument("--engine", choices=ENGINES, help="default: onnxruntime for an ONNX export, else torch")
    parser.add_argument("--max_batch_size", type=int, default=32, help="requests predicted together, at most")
    parser.add_argument("--batch_timeout", type=float, default=0.01, help="seconds a batch waits for more requests")
    parser.add_argument("--workers", type=int, default=1, help="model copies (processes) per device")
    parser.add_argument("--max_inputs", type=int, default=BodyLimits.max_inputs, help="inputs in one request, at most")
    parser.add_argument(
        "--max_body_bytes", type=int, default=BodyLimits.max_body_bytes, help="a request's size, at most"
    )
    add_corpus_options(parser)
    known, rest = parser.parse_known_args(args)
    check_settings(known)
    check_corpus_settings(known, rest)
    check_port(known.host, known.port)
    address = f"http://{LOCAL_ADDRESS.get(known.host, known.host)}:{known.port}"
    limits = BodyLimits(known.max_body_bytes, known.max_inputs)
    serve = corpus_service if is_retriever(known.source) else prediction_service
    loads, info, ready = serve(known, build, address, rest)
    apis = [PredictionAPI(load, known.max_batch_size, known.batch_timeout, path) for path, load in loads.items()]
    server = Server(
        apis,
        accelerator="auto",
        devices=1,
        workers_per_device=known.workers,
        timeout=REQUEST_TIMEOUT,
        middlewares=[(StrictBody, {"limits": limits})],
        # GET /info; /docs and /openapi.json (LitServe's, which say nothing of the endpoints) are off
        model_metadata={**info, **asdict(limits)},
        disable_openapi_url=True,
        ready_message=ready,
    )
    received: list[int] = []
    with handling(partial(shut_down, os.getpid(), received)), suppress(KeyboardInterrupt):  # (shut_down's)
        print(f"ftlit serve: loading {known.source} in {known.workers} worker(s)…", flush=True)
        server.run(host=known.host, port=known.port, generate_client_file=False, log_level="warning")
    sys.stdout.flush()
    if received:
        raise stopped(received[0], "the server and its workers stopped; start it again with the same command")
    return 0
