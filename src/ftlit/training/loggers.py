"""What ftlit needs from whichever Lightning loggers a run has (TensorBoard by default; CSV, MLflow, W&B … or a
list of them): the run's folder, and a way to hand over figures.

ftlit's own records (checkpoints, results.json with the validation history, figures as PNG files where a logger
takes no images) live in the run folder whatever the logger, so resuming and `ftlit compare` never depend on one.
"""

import os
import re
from pathlib import Path

from lightning import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from matplotlib import pyplot
from matplotlib.figure import Figure

# loggers that number their own run folders (save_dir/name/version_N): ftlit's run folder is theirs
VERSIONED_FOLDERS = (TensorBoardLogger, CSVLogger)


def run_folder(trainer: Trainer, every_device: bool = True) -> Path:
    """The run's folder: the versioned log folder of TensorBoard or CSV; for other loggers, the folder Lightning's
    checkpoints go under (``save_dir/name/version``: for MLflow ``mlruns/<experiment id>/<run id>``), so that
    checkpoints, results.json and figures sit together; without a logger, ``default_root_dir`` (as Lightning's
    ``trainer.log_dir``). ``every_device``: called on every device, which all get the first one's answer (only the
    first device's logger knows an MLflow run)."""
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    logger = trainer.loggers[0]
    if isinstance(logger, VERSIONED_FOLDERS):
        folder = logger.log_dir
    else:  # as ModelCheckpoint resolves its folder (its parent, here)
        logger.experiment  # noqa: B018 (starts the run, which gives W&B its version; the first device's alone)
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        folder = os.path.join(logger.save_dir or trainer.default_root_dir, str(logger.name), version)
    return Path(trainer.strategy.broadcast(folder) if every_device else folder)


def reopened(logger: Logger, version: str) -> Logger:
    """``logger`` writing into an earlier run's ``version`` folder (resuming it), for loggers with versioned folders;
    others are returned as they are (a resumed MLflow or W&B run is a new run there, its checkpoint the old one)."""
    if isinstance(logger, VERSIONED_FOLDERS):
        return type(logger)(logger.save_dir, name=logger.name, version=version)
    return logger


def figure_file_name(tag: str, step: int) -> str:
    """A figure's file name: ``val/confusion_matrix`` at step 120 is ``val_confusion_matrix-step120.png``."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', tag)}-step{step}.png"


def log_figures(trainer: Trainer, figures: dict[str, Figure], step: int) -> None:
    """Hand ``figures`` (tag → figure) to every logger that takes images — TensorBoard, MLflow (as artifacts), W&B —
    and, where any logger takes none (CSV, others), write them as PNG files in the run's ``figures/`` folder."""
    as_files = False
    for logger in trainer.loggers:
        for tag, figure in figures.items():
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, figure, global_step=step, close=False)
            elif isinstance(logger, MLFlowLogger):
                logger.experiment.log_figure(logger.run_id, figure, f"figures/{figure_file_name(tag, step)}")
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=tag, images=[figure], step=step)
            else:
                as_files = True
    if as_files:
        folder = run_folder(trainer, every_device=False)  # (figures are drawn on the first device only)
        (folder / "figures").mkdir(parents=True, exist_ok=True)
        for tag, figure in figures.items():
            figure.savefig(folder / "figures" / figure_file_name(tag, step))
    for figure in figures.values():  # (some are pyplot's, which keeps every figure open until closed)
        pyplot.close(figure)


class SaveConfigInRunFolder(SaveConfigCallback):
    """config.yaml in the run's folder (``run_folder``), whatever the logger: Lightning's own callback writes it to
    ``trainer.log_dir``, which loggers without versioned folders (MLflow on a database) leave unset."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "save_to_log_dir": False})

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        folder = run_folder(trainer, every_device=False)  # (Lightning calls this on the first device only)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(
            self.config,
            folder / self.config_filename,
            skip_none=False,
            overwrite=self.overwrite,
            multifile=self.multifile,
        )
