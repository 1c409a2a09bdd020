"""The ``ftlit`` command's runs: LightningCLI with fit, validate, test and predict (ftlit's tools are dispatched by
ftlit.commands, which ends every command the same way).

A run, in order:

1. parse the config and the command line (``parse_arguments``);
2. verify a checkpoint given as ``--ckpt_path FILE`` before any work, and refuse one of another task
   (``parse_arguments``, ``before_instantiate_classes``);
3. instantiate the data module, the model module and the Trainer, refusing settings that train no step or that the
   device cannot run (``instantiate_trainer``);
4. claim the outputs: find ``--ckpt_path last``, check the output folders can be written, lock them for this run,
   refuse to replace an earlier run's outputs without ``--overwrite``, add ftlit's callbacks
   (``after_instantiate_classes``);
5. ``fit``: train, logging once what was chosen for the machine (ftlit.machine); then ``after_fit``:
6. re-validate the best checkpoint, unless fit's last validation already scored those very weights;
7. finish: the task's last changes to the model (``finish_training``: calibration, thresholds);
8. export the model in Hugging Face format to ``export/``;
9. write results.json (metrics, evaluation, training with ``train.machine``, model, config).

``validate`` and ``test`` (step 5) score their splits and write results.json and the task's prediction files;
``predict`` writes predictions.jsonl, one record per input row.
"""

import sys
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import yaml
from lightning import Callback
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from ftlit._lightning import silence_known_noise
from ftlit.arguments import ArgumentProblem, FtlitArgumentParser, explain_argument_problem
from ftlit.commands import TOOLS_HELP, run_command
from ftlit.data.base import TransformerDataModule
from ftlit.errors import FtlitError
from ftlit.machine import check_precision, default_precision
from ftlit.settings import check_trains_a_step
from ftlit.training.callbacks import (
    DiscardUnstartedRun,
    DiskSpaceCheck,
    MachineReport,
    NonFiniteLossGuard,
    TrainingThroughput,
    ValidationHistory,
    use_training_progress_bar,
)
from ftlit.training.checkpoints import (
    AtomicCheckpointIO,
    config_differences,
    last_checkpoints,
    live_weights_were_scored,
    verify_checkpoint,
)
from ftlit.training.interrupts import outputs_first
from ftlit.training.locks import FolderLock
from ftlit.training.loggers import VERSIONED_FOLDERS, SaveConfigInRunFolder, reopened, run_folder
from ftlit.training.module import TransformerModule
from ftlit.training.outputs import check_outputs_free, check_writable, results_document, write_json
from ftlit.training.resume import ResumableTraining, last_checkpoint_path
from ftlit.training.summary import closing_summary


class FtlitCLI(LightningCLI):
    """``ftlit fit|validate|test|predict --config configs/<name>.yaml [--section.key value ...]``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--output_dir",
            type=str | None,
            default=None,
            help="Where export/, results.json and predictions go (default: the run's log folder).",
        )
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="Replace the export/, results.json or predictions.jsonl that --output_dir already holds.",
        )
        parser.add_argument(
            "--tune",
            type=dict | None,
            default=None,
            help="The search space of `ftlit tune` (see README); the other commands pass it over.",
        )
        # Data is always tokenised by the model's own tokenizer
        parser.link_arguments("model.init_args.model_name_or_path", "data.init_args.model_name_or_path")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        # LightningCLI loads --ckpt_path right after parsing (for its hyperparameters): a checkpoint file is verified
        # here, once and before any work; "last" is found and verified once the trainer knows the log folder
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path and path not in ("last", "best", "hpc") and "://" not in path:
            verify_checkpoint(path)
        # LightningCLI then takes the model class from the checkpoint: a checkpoint of another task would silently
        # replace the configured model (see before_instantiate_classes)
        self.configured_model = self.config[subcommand]["model"]["class_path"] if subcommand else None

    def before_instantiate_classes(self) -> None:
        if self.subcommand is None:
            return
        from_checkpoint = self.config[self.subcommand]["model"]["class_path"]
        if from_checkpoint != self.configured_model:
            path = self.config[self.subcommand]["ckpt_path"]
            raise FtlitError(
                f"--ckpt_path {path} is a checkpoint of {from_checkpoint.rsplit('.', 1)[-1]}, but the config trains "
                f"{self.configured_model.rsplit('.', 1)[-1]}: give a checkpoint of this task, or the config it was "
                "trained with."
            )

    def _setting(self, config, key: str, default=None):
        """``key`` of the running subcommand's section of ``config`` (the whole config outside a subcommand)."""
        section = config[self.subcommand] if self.subcommand else config
        return section.get(key, default)

    def instantiate_trainer(self, **kwargs):
        if self.subcommand == "fit":  # Lightning accepts settings that train no step: refused before any work
            if isinstance(self.model, TransformerModule):
                self.model.check_engine("fit")
            check_trains_a_step({**(self._setting(self.config_init, "trainer") or {}), **kwargs})
        # The Trainer refuses impossible settings (an uninstalled strategy, fsdp without a GPU, …) with clear
        # messages: they are the user's to fix, so they end as one line, not a traceback
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (ValueError, ImportError, MisconfigurationException) as err:
            raise FtlitError(f"Trainer settings rejected: {err}") from err
        # the precision asked for: Lightning quietly turns 16-mixed on a CPU into bf16-mixed
        requested = (self._setting(self.config_init, "trainer") or {}).get("precision")
        check_precision(str(requested or trainer.precision), trainer.strategy.root_device)
        use_training_progress_bar(trainer)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # FSDP/DeepSpeed keep their own writers
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer

    def after_instantiate_classes(self) -> None:
        if self.subcommand is None:  # ftlit inspect: the data module alone is used
            return
        self._resolve_checkpoint()
        configured = self._setting(self.config, "output_dir")
        self.run_dir = run_folder(self.trainer)  # (on every device)
        self.output_dir = Path(configured or self.run_dir)
        self.overwrite = self._setting(self.config, "overwrite")
        if self.trainer.is_global_zero:  # the first device writes every output
            self._claim_outputs()
        check_outputs_free(self.output_dir, self.subcommand, self.overwrite)
        self.throughput = TrainingThroughput()
        self.history = ValidationHistory()
        self.trainer.callbacks += [
            self.throughput,
            self.history,
            NonFiniteLossGuard(),
            ResumableTraining(),
            DiscardUnstartedRun(),
        ]
        if self.subcommand == "fit":
            self.machine = MachineReport(self.datamodule.pad_to_multiple_of, self.datamodule.num_workers)
            self.trainer.callbacks += [DiskSpaceCheck(self.output_dir), self.machine]

    def _claim_outputs(self) -> None:
        """Before any work: every output folder can be written, and this run holds it alone (a lock for the run's
        lifetime: two runs started at once must not write into one folder)."""
        folders = {"--output_dir": self.output_dir}
        if self.subcommand == "fit":
            folders["The run's log folder"] = self.run_dir
        for what, folder in folders.items():
            check_writable(folder, what)
        for folder in dict.fromkeys(folders.values()):
            # released when the command ends (main), removing the folders it made if nothing else went in them
            FolderLock(folder).acquire()

    def _resolve_checkpoint(self) -> None:
        """``--ckpt_path last`` means the newest last.ckpt of earlier runs (Lightning would look only in this new
        run's empty folder); a fit resumed from it continues that run's log folder."""
        arguments = self.config_init[self.subcommand]
        if self.subcommand == "fit" and arguments.get("ckpt_path") not in (None, "last"):
            self._check_same_run(Path(arguments["ckpt_path"]))
        if arguments.get("ckpt_path") != "last":
            return
        logger = self.trainer.logger
        if logger is None:
            root = Path(self.trainer.default_root_dir)
        elif isinstance(logger, VERSIONED_FOLDERS):  # save_dir/name, its runs' version_N folders below
            root = Path(logger.root_dir)
        elif self.trainer.world_size > 1:
            # only the first device's MLflow or W&B logger knows its experiment (and the devices cannot talk yet)
            raise FtlitError(
                f"--ckpt_path last with {type(logger).__name__} on several devices: give the checkpoint's path "
                "(ckpt_path: <run folder>/checkpoints/last.ckpt) instead."
            )
        else:  # the experiment's (MLflow) or project's (W&B) folder, its runs below
            root = run_folder(self.trainer).parent
        found = self._last_checkpoint_of_this_run(root)
        if found is None:
            if self.subcommand != "fit":
                raise FtlitError(f"--ckpt_path last: there is no last.ckpt under {root}.")
            # so that a requeue script can always pass --ckpt_path last
            print(f"--ckpt_path last: no last.ckpt of this run under {root} yet, so this is a new run.")
            arguments["ckpt_path"] = None
            return
        verify_checkpoint(found)
        run_dir = found.parent.parent
        if self.subcommand == "fit" and logger is not None and run_dir.parent == root:
            # the first logger's folder is the run's; the others (if any) start new versions of their own
            self.trainer.loggers = [reopened(logger, run_dir.name), *self.trainer.loggers[1:]]
        print(f"Resuming from {found}")
        arguments["ckpt_path"] = str(found)

    def _differences(self, checkpoint: Path) -> list[str] | None:
        """How this run's model and data settings differ from those of the run that wrote ``checkpoint`` (None when
        that run's config.yaml is not beside its checkpoints)."""
        saved = checkpoint.parent.parent / "config.yaml"
        if not saved.is_file():
            return None
        return config_differences(yaml.safe_load(saved.read_text()) or {}, self._settings_as_saved)

    @cached_property
    def _settings_as_saved(self) -> dict:
        """This run's config as LightningCLI saves it beside its checkpoints (config.yaml): dumped once, however
        many earlier runs it is compared with."""
        return yaml.safe_load(self.parser.dump(self.config, skip_none=False))[self.subcommand]

    def _check_same_run(self, checkpoint: Path) -> None:
        """A run resumed from a checkpoint must have the settings it was trained with."""
        differences = self._differences(checkpoint)
        if differences:
            raise FtlitError(
                f"--ckpt_path {checkpoint} belongs to a run with other settings ({'; '.join(differences)}). Resume it "
                "with its own settings (its config.yaml), or start a new run without --ckpt_path."
            )

    def _last_checkpoint_of_this_run(self, root: Path) -> Path | None:
        """For ``fit``: the newest last.ckpt under ``root`` whose run has this run's settings (others are passed
        over with a notice); for the other subcommands: the newest."""
        found = last_checkpoints(root)
        if self.subcommand != "fit":
            return found[0] if found else None
        for checkpoint in found:
            differences = self._differences(checkpoint)
            if not differences:
                return checkpoint
            print(f"--ckpt_path last: not resuming {checkpoint}, a run with other settings ({'; '.join(differences)}).")
        return None

    # ------------------------------------------------------------------------------------------------- hooks
    def before_fit(self) -> None:
        self.throughput.run_started = time.perf_counter()

    def after_fit(self) -> None:
        train_time = self.throughput.train_time_s()  # the whole run, when it was resumed
        history = list(self.history.entries)  # (before the best checkpoint is validated again)
        checkpoint = self.trainer.checkpoint_callback  # none where checkpointing is off: the last weights are exported
        best = checkpoint.best_model_path if checkpoint else ""  # ("" without validation too)
        self._validate_best_unless_scored(best, history)
        self.model.finish_training()
        if self.trainer.is_global_zero:
            with outputs_first(self.output_dir):  # the export and results.json together, or neither
                self._export(best or str(last_checkpoint_path(self.trainer) or ""))
                self._write_results("val", self._training_record(train_time, best, history))

    def _validate_best_unless_scored(self, best: str, history: list[dict]) -> None:
        """Validate the best checkpoint again: its metrics go to results.json and its weights to export/. Not when
        fit's last validation scored these very weights: a whole pass over the validation data for the same
        numbers."""
        best_step = getattr(self.trainer.checkpoint_callback, "best_step", None) if best else -1
        last_validated = history[-1]["step"] if history else None
        if live_weights_were_scored(last_validated, self.trainer.global_step, best_step):
            rank_zero_info(
                f"The exported weights are those fit's last validation scored (step {last_validated}): not evaluated "
                "again."
            )
        elif self.trainer.limit_val_batches != 0:
            # not logged: TensorBoard would draw the best checkpoint's scores at the last step of the curves
            loggers, self.trainer.loggers = self.trainer.loggers, []
            try:
                self.trainer.validate(self.model, datamodule=self.datamodule, ckpt_path=best or None)
            finally:
                self.trainer.loggers = loggers

    def _training_record(self, train_time: float, best: str, history: list[dict]) -> dict:
        """The ``train`` section of results.json."""
        return {
            "train_time_s": round(train_time, 2),
            "best_checkpoint": best or None,
            "throughput": self.throughput.summary,
            "log_dir": str(self.run_dir),
            "history": history,
            "machine": self.machine.record,
        }

    def _export(self, checkpoint: str) -> None:
        """The Hugging Face export; if it cannot be written (a full disk, say), the checkpoint is intact and the
        message says how to export from it."""
        check_outputs_free(self.output_dir, "fit", self.overwrite)  # again: nothing else may have written there
        try:
            self.model.export(self.output_dir / "export", self.datamodule.tokenizer)
        except Exception as err:  # OSError, or the tokenizers library's plain Exception on a full disk
            kept = f"Training is saved in {checkpoint}" if checkpoint else "Checkpointing was off: nothing was saved"
            raise FtlitError(
                f"Could not write the export to {self.output_dir / 'export'}: {err}. {kept}. Make room (or fix the "
                "folder) and run the same command with --ckpt_path last: it finds the finished run and only "
                "validates and exports."
            ) from err

    def after_validate(self) -> None:
        self._write_results("val")

    def after_test(self) -> None:
        self._write_results("test")

    def after_predict(self) -> None:
        if self.trainer.is_global_zero:
            records = self.model.predictions or []
            with outputs_first(self.output_dir):
                write_json(self.output_dir / "predictions.jsonl", records, lines=True)
            print(f"predict: {len(records):,} records written to {self.output_dir / 'predictions.jsonl'}")

    # ------------------------------------------------------------------------------------------------- outputs
    def _write_results(self, stage: str, train: dict | None = None) -> None:
        if not self.trainer.is_global_zero:
            return
        metrics = {
            key.removeprefix(f"{stage}/"): round(value.item(), 6)
            for key, value in self.trainer.callback_metrics.items()
            if key.startswith(f"{stage}/")
        }
        evaluation = {**self.model.eval_summary(), "main_metric": self.model.monitor}
        results = results_document(
            metrics,
            evaluation,
            train or {},
            self.model.describe_model(),
            self.config[self.subcommand].as_dict(),
        )
        outputs = self.model.output_files()  # (n-best lists of every question: built once)
        files = {name: self.output_dir / name for name in ["results.json", *outputs]}
        with outputs_first(self.output_dir):  # all of them, or none
            for name, content in outputs.items():
                write_json(files[name], content)
            write_json(files["results.json"], results)
        if train is not None:
            files |= {"export": self.output_dir / "export", "best checkpoint": train["best_checkpoint"]}
        print(closing_summary(self.subcommand, results, files))


def build_cli(args: list[str], run: bool = True, callbacks: Sequence[Callback] = ()) -> FtlitCLI:
    """The CLI on ``args``, run unless ``run`` is false; ``callbacks``: added to the Trainer's, and not written to
    the run's config (``ftlit tune``'s pruning: the trial's own, not a setting of the run)."""
    silence_known_noise()
    try:
        return _build_cli(args, run, list(callbacks))
    except ArgumentProblem as problem:
        raise FtlitError(explain_argument_problem(problem, args)) from problem


def _build_cli(args: list[str], run: bool, callbacks: list[Callback]) -> FtlitCLI:
    return FtlitCLI(
        TransformerModule,
        TransformerDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=42,
        auto_configure_optimizers=False,
        # a CLI built for a tool (ftlit export's validation) is no run: no config.yaml in its (working) folder
        save_config_callback=SaveConfigInRunFolder if run else None,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"precision": default_precision(), **({"callbacks": callbacks} if callbacks else {})},
        parser_kwargs={"epilog": TOOLS_HELP},
        parser_class=FtlitArgumentParser,
        args=args,
        run=run,
    )


def built_cli(arguments: list[str]) -> FtlitCLI:
    """The CLI on ``arguments``, not run: its data module and model module, for a tool to use."""
    return build_cli(arguments, run=False)


def main(args: list[str] | None = None) -> None:
    """Console entry point: ``ftlit <subcommand or tool> ...`` (see ftlit.commands)."""
    run_command(sys.argv[1:] if args is None else list(args), build_cli)


if __name__ == "__main__":
    main()
