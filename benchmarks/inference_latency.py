"""Inference speed of a fine-tuned MiniLM on this machine's CPU: PyTorch eager, ONNX Runtime fp32 and ONNX Runtime
int8 (dynamic quantisation), each with its validation metric, and ``ftlit serve`` under load.

For SST-2 (sentences, ``configs/offline_minilm_sst2.yaml``) and SQuAD (questions over paragraphs in 384-token
windows, ``configs/offline_minilm_squad.yaml``), a model is fine-tuned briefly (a seeded subset of the training
data, one epoch: enough for a real metric, not for the best one), exported with ``ftlit export --format onnx`` and
``--quantize int8`` (each export scored on the validation set by ``ftlit export`` itself), and then timed through
``ftlit serve``'s own request path (``Predictor``: request → rows → features → model → ftlit's decoding):

- latency: one request of one input at a time, p50/p90 in milliseconds;
- throughput: requests of 32 inputs, inputs per second;
- server: ``ftlit serve`` in its own process, ``--clients`` concurrent local clients sending ``--requests``
  requests of one input each over HTTP (to 127.0.0.1 only); end-to-end p50/p90 and requests per second. Clients
  and server share the machine's cores.

Trained runs and exports are kept in ``--output`` and reused by a rerun. From the project root:

    python benchmarks/inference_latency.py
    python benchmarks/inference_latency.py --tiny      # smoke check: the tiny random model, a few inputs
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from common import print_table, tiny_bert_folder

from ftlit.cli import built_cli
from ftlit.cli import main as ftlit
from ftlit.data.loading import data_root
from ftlit.data.squad_files import load_squad_file
from ftlit.tools.prediction import Predictor

TASKS = {
    "sst2": {"config": "configs/offline_minilm_sst2.yaml", "train_samples": 8000, "eval_samples": None,
             "metric": "accuracy"},
    "squad": {"config": "configs/offline_minilm_squad.yaml", "train_samples": 4000, "eval_samples": 1000,
              "metric": "f1"},
}  # fmt: skip
ENGINES = {"PyTorch eager (fp32)": ("", "torch"), "ONNX Runtime fp32": ("onnx", "onnxruntime"),
           "ONNX Runtime int8": ("onnx-int8", "onnxruntime")}  # fmt: skip


def requests_of(task: str, count: int) -> list[dict]:
    """Real inputs: SST-2 dev sentences, SQuAD questions with their paragraphs."""
    if task == "sst2":
        lines = (data_root() / "glue/SST-2/dev.tsv").read_text().splitlines()[1:]
        texts = [line.split("\t")[0] for line in lines]
        return [{"text": texts[i % len(texts)]} for i in range(count)]
    rows = load_squad_file(str(data_root() / "squad/train-v1.1.reconstructed.json.gz"))
    return [{"question": rows[i]["question"], "context": rows[i]["context"]} for i in range(count)]


def train_and_export(task: str, output: Path, tiny: bool) -> Path:
    """The run folder of a brief fine-tune, with its ONNX fp32 and int8 exports (each made once)."""
    settings, run = TASKS[task], output / ("tiny" if tiny else "") / task
    quick = ["--trainer.enable_progress_bar", "false"]
    if not (run / "export").is_dir():
        arguments = ["fit", "--config", settings["config"], "--trainer.max_epochs", "1", "--output_dir", str(run),
                     "--trainer.default_root_dir", str(run / "logs"), "--trainer.logger", "false",
                     "--data.max_train_samples", str(20 if tiny else settings["train_samples"]), *quick]  # fmt: skip
        if tiny:
            arguments += ["--model.model_name_or_path", tiny_bert_folder(), "--data.max_eval_samples", "20"]
        elif settings["eval_samples"]:
            arguments += ["--data.max_eval_samples", str(settings["eval_samples"])]
        ftlit(arguments)
    for folder, quantize in (("onnx", []), ("onnx-int8", ["--quantize", "int8"])):
        if not (run / folder / "model.onnx").is_file():
            ftlit(["export", str(run), "--format", "onnx", *quantize, "--output", str(run / folder), *quick])
    return run


def metric_of(run: Path, folder: str, task: str) -> float:
    """The validation metric ``ftlit export`` scored: PyTorch's (in the fp32 report), or ONNX Runtime's."""
    report = json.loads((run / (folder or "onnx") / "export_report.json").read_text())
    return report["metrics"]["torch" if not folder else "onnxruntime"][TASKS[task]["metric"]]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def time_predictor(predictor: Predictor, requests: list[dict], singles: int, batch: int) -> dict:
    """Single-input latency (ms, after a warm-up) and throughput of batches of ``batch`` inputs (inputs/s)."""
    rows = [predictor.request_row(request) for request in requests]
    for row in rows[:5]:
        predictor.predict([row])
    latencies = []
    for row in rows[:singles]:
        started = time.perf_counter()
        predictor.predict([row])
        latencies.append(1000 * (time.perf_counter() - started))
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        predictor.predict(rows[start : start + batch])
    throughput = len(rows) / (time.perf_counter() - started)
    return {"p50_ms": round(percentile(latencies, 0.5), 1), "p90_ms": round(percentile(latencies, 0.9), 1),
            "inputs_per_s": round(throughput, 1)}  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_server(source: Path, requests: list[dict], clients: int) -> dict:
    """``ftlit serve`` on ``source``, loaded by ``clients`` concurrent clients sending one request each at a time."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ftlit", "serve", str(source), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"ftlit serve {source} stopped with exit code {server.returncode}")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        startup = time.perf_counter() - started

        def send(request: dict) -> float:
            sent = time.perf_counter()
            body = urllib.request.Request(f"{url}/predict", data=json.dumps(request).encode(),
                                          headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(body, timeout=120) as response:
                response.read()
            return 1000 * (time.perf_counter() - sent)

        send(requests[0])
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = list(pool.map(send, requests))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {"server_p50_ms": round(percentile(latencies, 0.5), 1),
            "server_p90_ms": round(percentile(latencies, 0.9), 1),
            "server_requests_per_s": round(len(requests) / wall, 1), "server_startup_s": round(startup, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/inference"))
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--singles", type=int, default=200, help="single requests timed per engine")
    parser.add_argument("--inputs", type=int, default=512, help="inputs of the batched throughput run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="requests sent to each server")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.singles, args.inputs, args.requests = 10, 32, 40
    table = []
    for task in args.tasks:
        run = train_and_export(task, args.output, args.tiny)
        requests = requests_of(task, max(args.inputs, args.singles, args.requests))
        for name, (folder, engine) in ENGINES.items():
            source = run / folder if folder else run
            predictor = Predictor.from_export(source, built_cli, engine)
            timing = time_predictor(predictor, requests[: max(args.inputs, args.singles)], args.singles, 32)
            del predictor
            row = {"task": task, "engine": name, TASKS[task]["metric"]: round(metric_of(run, folder, task), 4),
                   "model_mb": round((source / "model.onnx").stat().st_size / 2**20, 1) if folder else
                   round(sum(f.stat().st_size for f in (run / "export").glob("*.safetensors")) / 2**20, 1),
                   **timing, **load_server(source, requests[: args.requests], args.clients)}  # fmt: skip
            table.append(row)
            print(json.dumps(row), flush=True)
    machine = f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    print(f"\nInference on {machine}; server load: {args.clients} clients, {args.requests} requests of one input\n")
    print_table(table)
    results = args.output / ("tiny" if args.tiny else "") / "results.json"
    results.write_text(json.dumps({"machine": machine, "rows": table}, indent=2))


if __name__ == "__main__":
    main()
