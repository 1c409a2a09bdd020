"""ftlit serve: a real server process on a free local port answers /health and /predict — one input or a list — as
``ftlit predict`` answers the same inputs; bad and hostile requests get a 4xx naming the field (413 naming the
limit) and never fail the requests batched with them, nor leave a traceback in the log; /info says the limits and
/docs and /openapi.json are off; SIGTERM stops it and its workers; bad settings are refused before anything loads.
That every task's requests are answered as ``ftlit predict`` answers them, from the PyTorch export and from an ONNX
export moved away from its run, is tests/test_tasks.py's."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import pytest
from test_request_body import HOSTILE

from conftest import TASKS, close
from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.tools.serve import Request, answer

QUIET = ["--trainer.enable_progress_bar", "false"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(
    url: str, body: bytes | str | object, timeout: float = 60, kind: str = "application/json"
) -> tuple[int, object]:
    """(status, parsed JSON answer) of a POST; a body that is not bytes is sent as JSON (declared as ``kind``)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def predicted(model: str, rows: list[dict], folder) -> list[dict]:
    """What ``ftlit predict`` (fp32) of the classifier writes for ``rows``, less the text the server leaves out."""
    folder.mkdir(exist_ok=True)
    source = folder / "inputs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    main(["predict", *TASKS["classification"], "--model.model_name_or_path", model, "--data.predict_file", str(source),
          "--output_dir", str(folder), "--trainer.precision", "32-true", *QUIET])  # fmt: skip
    records = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return [{key: value for key, value in record.items() if key != "text"} for record in records]


def assert_same(ours: list[dict], theirs: list[dict], tolerance: float = 1e-5) -> None:
    """The same records; scores within ``tolerance`` (fp32 on both sides, batched differently)."""
    assert len(ours) == len(theirs) > 0
    for mine, reference in zip(ours, theirs):
        assert close(mine, reference, tolerance), (mine, reference)


def start_server(args: list[str]) -> tuple[str, subprocess.Popen]:
    """``ftlit serve *args`` on a free local port, as a user starts it, once it answers /health: its address and
    process (its output piped; in a session of its own, which ``kill`` ends whole)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ftlit", "serve", *args, "--port", str(port)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        kill(process)
        pytest.fail(f"ftlit serve did not start: {process.communicate()[0][-3000:]}")
    return url, process


def kill(process: subprocess.Popen) -> None:
    """SIGKILL to a server started by ``start_server`` and its workers, which a failed test may leave running (and
    holding its output open)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(trained_runs):
    """``ftlit serve`` on the classification run; stopped by the last test (SIGTERM)."""
    run, _ = trained_runs["classification"]
    url, process = start_server([str(run), "--max_batch_size", "8", "--batch_timeout", "0.05", "--max_inputs", "12",
                                 "--max_body_bytes", "300000"])  # fmt: skip
    yield url, process
    kill(process)


@pytest.mark.slow  # starts a server
def test_the_server_answers_one_text_and_a_list_as_ftlit_predict_does(server, trained_runs, tmp_path):
    url, _ = server
    rows = [json.loads(line) for line in trained_runs["classification"][1].read_text().splitlines()[:12]]
    texts = [{"text": row["text"]} for row in rows]
    expected = predicted(str(trained_runs["classification"][0] / "export"), texts, tmp_path)
    status, one = post(f"{url}/predict", texts[0])
    assert status == 200 and isinstance(one, dict)
    status, several = post(f"{url}/predict", texts)
    assert status == 200 and isinstance(several, list)
    assert_same([one], expected[:1])
    assert_same(several, expected)
    assert set(one) == {"label", "score", "probabilities"}


@pytest.mark.slow  # starts a server
def test_bad_requests_get_a_4xx_naming_the_field_and_spoil_no_other_request(server):
    url, _ = server
    long_text = "great " * 200  # far beyond the 32 tokens this model reads, and it truncates
    bad = {
        "missing field": ({"txt": "great"}, 422, "txt"),
        "wrong type": ({"text": 5}, 422, "text"),
        "text too long": ({"text": long_text}, 422, "text"),
        "empty text": ({"text": "  "}, 422, "text"),
        "an item of a list": ([{"text": "great"}, {"text": None}], 422, "[1].text"),
        "empty list": ([], 422, "request"),
        "not a JSON object": ("great", 422, "request"),
        "half a UTF-16 pair": (b'{"text": "\\ud800 great"}', 422, "text"),
        "not JSON": (b"{'text': 'great'", 400, "request"),
    }
    for case, (body, status, field) in bad.items():
        got, answer_ = post(f"{url}/predict", body)
        assert (got, answer_.get("field")) == (status, field), case
        assert answer_["error"].startswith(f"{field}: "), case
    for case, (body, status, message) in HOSTILE.items():  # 413 or 400 (deep nesting: a RecursionError, 500, before)
        got, answer_ = post(f"{url}/predict", body)
        assert got == status and answer_["error"].startswith("request: ") and message in answer_["error"], case
    # a good body declared as a form (curl -d) is read as JSON
    assert post(f"{url}/predict", {"text": "great"}, kind="application/x-www-form-urlencoded")[0] == 200
    # sent together, the bad requests are batched with good ones: each gets its own answer
    bodies = [{"text": "a great film"}, {"text": 5}] * 6
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: post(f"{url}/predict", body), bodies))
    assert [status for status, _ in answers] == [200, 422] * 6
    assert all(reply["label"] for status, reply in answers if status == 200)


class Failing:
    """A predictor whose batch fails on a row its data module refuses ("bad") or on one that breaks it ("boom")."""

    def predict(self, rows: list[dict]) -> list[dict]:
        texts = [row["text"] for row in rows]
        if "bad" in texts:
            raise FtlitError("a check of the data module failed.")
        if "boom" in texts:
            raise TypeError("broken")
        return [{"label": text.upper()} for text in texts]


def test_a_request_that_fails_its_batch_fails_alone_with_422_or_500_for_a_fault_of_the_server(caplog):
    requests = [Request([{"text": text}], single=True) for text in ("good", "bad", "boom", "fine")]
    answer(requests, Failing())
    assert [request.status if request.error else 200 for request in requests] == [200, 422, 500, 200]
    assert [request.answers for request in requests] == [[{"label": "GOOD"}], [], [], [{"label": "FINE"}]]
    assert str(requests[1].error) == "request: a check of the data module failed."
    assert str(requests[2].error) == "request: the server failed (TypeError); see its log."
    assert "TypeError: broken" in caplog.text  # the traceback, for whoever runs the server


@pytest.mark.slow  # starts a server
def test_info_says_the_limits_and_the_docs_are_off(server):
    url, _ = server
    with urllib.request.urlopen(f"{url}/info", timeout=10) as response:
        info = json.loads(response.read())
    assert info["model"] == {"task": "SequenceClassification", "engine": "torch", "max_body_bytes": 300_000,
                             "max_inputs": 12}  # fmt: skip
    for path in ("/docs", "/redoc", "/openapi.json"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}{path}", timeout=10)
        assert missing.value.code == 404, path


def test_the_server_refuses_what_it_cannot_serve_before_starting(trained_runs, tmp_path, capsys):
    def refused(args: list[str]) -> str:
        with pytest.raises(SystemExit) as stop:
            main(["serve", *args])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err.strip().splitlines()[-1]

    run, _ = trained_runs["classification"]
    assert "holds no Hugging Face export" in refused([str(tmp_path)])
    assert "has no model.onnx" in refused([str(run), "--engine", "onnxruntime", "--port", str(free_port())])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert "choose another --port" in refused([str(run), "--port", str(taken.getsockname()[1])])
    # settings are checked first: a folder that does not exist is not even looked at
    missing = str(tmp_path / "missing")
    bad_settings = {
        ("--batch_timeout", "30"): "--batch_timeout must be ≥ 0 and < 30, got 30.0.",
        ("--batch_timeout", "nan"): "--batch_timeout must be ≥ 0 and < 30, got nan.",
        ("--max_inputs", "0"): "--max_inputs must be ≥ 1, got 0.",
        ("--max_body_bytes", "-1"): "--max_body_bytes must be ≥ 1, got -1.",
        ("--workers", "0"): "--workers must be ≥ 1, got 0.",
    }
    for setting, message in bad_settings.items():
        assert message in refused([missing, *setting]), setting
    assert not (tmp_path / "missing").exists()


def running(processes: list[str]) -> list[str]:
    return [pid for pid in processes if Path(f"/proc/{pid}").exists()]


@pytest.mark.slow  # starts a server
def test_a_stop_while_the_workers_load_stops_them_too(trained_runs):
    run, _ = trained_runs["classification"]
    process = subprocess.Popen([sys.executable, "-m", "ftlit", "serve", str(run), "--port", str(free_port())],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    for line in process.stdout:  # the export loads in this process first, then LitServe starts its workers
        if line.startswith("ftlit serve: loading"):
            break
    time.sleep(0.5)
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 143, output[-2000:]
    assert "ftlit serve: SequenceClassification (torch) at" not in output  # (stopped before it served)
    assert "ftlit: stopped: Interrupted by SIGTERM: the server and its workers stopped;" in output
    assert "Traceback" not in output
    deadline = time.monotonic() + 30
    while running(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert children and not running(children)


@pytest.mark.slow  # starts a server
def test_sigterm_stops_the_server_and_its_workers(server):
    url, process = server
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert children  # LitServe's worker processes
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 143, output[-2000:]
    assert "ftlit serve: SequenceClassification (torch) at http://127.0.0.1:" in output
    assert (
        "ftlit: stopped: Interrupted by SIGTERM: the server and its workers stopped; start it again with the same "
        "command.\n" in output
    )
    assert "Traceback" not in output and "Error" not in output  # no request of this module's failed inside
    deadline = time.monotonic() + 30  # the workers finish their shutdown after the server's process has ended
    while any(Path(f"/proc/{child}").exists() for child in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [child for child in children if Path(f"/proc/{child}").exists()]
