"""``ftlit export SOURCE --format onnx [--quantize int8] [--output DIR]``: a run's Hugging Face export as ONNX.

SOURCE is a run's output folder (with ``export/`` and ``results.json``) or its ``export/`` folder. The run's own
config (from its ``results.json``) says which task and validation data it had, so the graph is checked on real
inputs: the outputs of ONNX Runtime must equal PyTorch's (fp32: largest difference ≤ 1e-4), and the validation
metrics of both are written to ``export_report.json``. With ``--quantize int8`` the int8 graph is scored likewise.
The folder holds ``model.onnx``, the Hugging Face ``config.json`` (labels, thresholds, window settings) and the
tokenizer: ``ftlit predict --model.engine onnxruntime --model.model_name_or_path DIR`` and ``ftlit serve`` need
nothing else.
"""

import argparse
import importlib
import json
import shutil
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import torch
import yaml

from ftlit.deploy.onnx import ONNX_FILE, TOLERANCE, OnnxRuntimeModel, export_onnx, largest_difference, quantize_int8
from ftlit.errors import FtlitError
from ftlit.training.checkpoints import verify_weights
from ftlit.training.outputs import check_writable, replace_directory

REPORT_FILE = "export_report.json"


def find_run(source: Path) -> tuple[Path, dict | None]:
    """The Hugging Face export of ``source`` (a run folder or its export folder) and its run's config, if any."""
    if not source.is_dir():
        raise FtlitError(f"{source} is not a folder: give a run's output folder or its export/ folder.")
    export = source / "export" if (source / "export" / "config.json").is_file() else source
    if not (export / "config.json").is_file():
        raise FtlitError(f"{source} holds no Hugging Face export (config.json): give a run's output folder or export/.")
    # an ONNX export carries its run's config in its report, so that it can be served from anywhere
    for results in (export.parent / "results.json", export / "results.json", export / REPORT_FILE):
        if results.is_file():
            return export, json.loads(results.read_text()).get("config")
    return export, None


def run_arguments(export: Path, config: dict | None, arguments: list[str]) -> list[str]:
    """The CLI arguments that evaluate or serve ``export`` as its run did: the run's config (``find_run``'s) with
    ``arguments`` over it, the model read from ``export``, in one process, in fp32."""
    if config is not None:
        # (jsonargparse reads a config given as YAML text as it reads a file)
        arguments = ["--config", yaml.safe_dump(evaluation_config(config, export)), *arguments]
    elif "--config" not in arguments:
        raise FtlitError(
            f"{export} has no results.json beside it, so nothing says its task and data settings: give them with "
            "--config X (a config of the task), as for `ftlit validate`."
        )
    # one process (on a machine with several GPUs, Lightning would start one per device)
    return [
        *arguments,
        "--model.model_name_or_path",
        str(export),
        "--trainer.devices",
        "1",
        "--trainer.precision",
        "32-true",
        "--trainer.logger",
        "false",
        "--trainer.enable_checkpointing",
        "false",
    ]


def check_output(output: Path, export: Path) -> None:
    """The output folder is replaced whole: it must not hold the export, nor anything but an earlier ONNX export; and
    its folder must be writable (the export is written beside it first, then renamed into place)."""
    if export.resolve().is_relative_to(output.resolve()):
        raise FtlitError(
            f"--output {output} holds the export {export}, which writing there would replace: name another folder."
        )
    if output.is_dir() and any(output.iterdir()) and not (output / REPORT_FILE).is_file():
        raise FtlitError(f"--output {output} holds files that are not an ONNX export of ftlit: name another folder.")
    check_writable(output.parent, f"--output {output}: its folder")


def class_of(class_path: str) -> type:
    """The class a config's ``class_path`` names."""
    module_name, _, class_name = class_path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def evaluation_config(config: dict, export: Path) -> dict:
    """The run's model and data settings for evaluating its export: the model read from ``export``, without the
    settings that shaped only training (LoRA, class weights …: the export holds what they did), nor those that
    applied only to the run's own files (QA read from retrieved paragraphs: a served question brings its own)."""
    model, data = config["model"], config["data"]
    init_args = {
        key: value
        for key, value in model.get("init_args", {}).items()
        if key not in class_of(model["class_path"]).training_only_settings
    }
    init_args["model_name_or_path"] = str(export)
    file_only = class_of(data["class_path"]).file_only_settings
    data_args = {key: value for key, value in data.get("init_args", {}).items() if key not in file_only}
    data = {**data, "init_args": {**data_args, "predict_file": None}}
    return {
        "seed_everything": config.get("seed_everything", 42),
        "model": {**model, "init_args": init_args},
        "data": data,
    }


def main(args: list[str], build: Callable[[list[str]], object]) -> int:
    """``build(arguments)``: the CLI (not run) on the arguments, as ``ftlit inspect`` builds it."""
    parser = argparse.ArgumentParser(
        prog="ftlit export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="a run's output folder, or its export/ folder")
    parser.add_argument("--format", choices=["onnx"], default="onnx")
    parser.add_argument("--quantize", choices=["int8"], help="ONNX Runtime's dynamic int8 quantisation")
    parser.add_argument("--output", type=Path, help="default: onnx/ (onnx-int8/) beside the export")
    parser.add_argument("--check_batches", type=int, default=8, help="validation batches compared with PyTorch")
    known, rest = parser.parse_known_args(args)
    if known.check_batches < 1:
        raise FtlitError(f"--check_batches {known.check_batches}: at least 1.")
    export, config = find_run(known.source)
    verify_weights(export)
    output = known.output or export.parent / ("onnx-int8" if known.quantize else "onnx")
    check_output(output, export)
    cli = build(run_arguments(export, config, rest))
    report = export_checked(cli, export, output, known.quantize, known.check_batches, config)
    lines = [
        f"ONNX export written to {output} ({report['file_mb']} MB{', int8' if known.quantize else ''}).",
        f"Largest difference from PyTorch (fp32 graph, {report['checked_features']} validation features): "
        f"{report['largest_difference']:.2e} (tolerance {TOLERANCE:g}).",
    ]
    torch_metrics, onnx_metrics = report["metrics"]["torch"], report["metrics"]["onnxruntime"]
    for name in sorted(torch_metrics.keys() | onnx_metrics.keys()):
        lines.append(
            f"  {name}: torch {torch_metrics.get(name, float('nan')):.4f}, onnxruntime "
            f"{onnx_metrics.get(name, float('nan')):.4f}"
        )
    print("\n".join(lines))
    return 0


def export_checked(
    cli, export: Path, output: Path, quantize: str | None, check_batches: int, config: dict | None
) -> dict:
    """Export, check against PyTorch, quantise if asked, score both on the validation set; the folder is written
    whole or not at all. The report keeps the run's ``config`` (if known), so that the folder serves alone."""
    module, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    trainer.validate(module, datamodule=datamodule, verbose=False)
    if module.last_eval is None:
        raise FtlitError("The run's config has no validation data to check the export on: give --data.validation_file.")
    before = module.last_eval.metrics
    loaders = datamodule.val_dataloader()
    loader = loaders[0] if isinstance(loaders, list) else loaders
    names = [name for name in datamodule.tokenizer.model_input_names if name in next(iter(loader))]
    batches = [{name: batch[name] for name in names} for batch in islice(loader, check_batches)]
    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        # two rows at least: torch.export would fix a batch axis it only saw at size 1
        sample = {name: torch.cat([tensor, tensor])[: max(2, len(tensor))] for name, tensor in batches[0].items()}
        export_onnx(module.model, sample, {name: module.onnx_axes(name) for name in sample}, staging / ONNX_FILE)
        module.model.config.save_pretrained(staging)
        datamodule.tokenizer.save_pretrained(staging)
        difference = largest_difference(module.model, OnnxRuntimeModel(staging), batches)
        if difference > TOLERANCE:
            raise FtlitError(
                f"The ONNX graph's outputs differ from PyTorch's by up to {difference:.2e} (> {TOLERANCE:g}) on the "
                "validation inputs: not exported. Report it with the model's name and this message."
            )
        if quantize:
            fp32 = staging / "model.fp32.onnx"
            (staging / ONNX_FILE).rename(fp32)
            quantize_int8(fp32, staging / ONNX_FILE)
            fp32.unlink()
        module.model = OnnxRuntimeModel(staging)
        trainer.validate(module, datamodule=datamodule, verbose=False)
        after = module.last_eval.metrics
        report = {
            "format": "onnx",
            "quantize": quantize,
            "source": str(export),
            "tolerance": TOLERANCE,
            "largest_difference": difference,
            "checked_features": sum(len(b["input_ids"]) for b in batches),
            "file_mb": round((staging / ONNX_FILE).stat().st_size / 2**20, 1),
            "metrics": {"torch": before, "onnxruntime": after},
            "config": config,
        }
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_directory(staging, output)
    return report
