"""The callbacks a TransformerModule brings to its runs (``configure_callbacks``): the contract handed over at
every stage's setup, what became of randomly initialised weights, and, in fit, the best checkpoint by the monitored
metric and early stopping on it."""

from lightning import Callback
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from ftlit.errors import FtlitError
from ftlit.training.loading import check_trained_head


class ContractHandover(Callback):
    """Hands the data module's contract to the model module at every stage's setup, after the data module has set
    up and before the model builds its head: the one place where data and model meet."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        contract = getattr(trainer.datamodule, "contract", None)
        if contract is not None:
            pl_module.accept_contract(contract)
        elif pl_module.contract is None:
            raise FtlitError(
                f"{type(pl_module).__name__} has no data contract: train or evaluate it with its data module, or "
                "hand it one first (accept_contract)."
            )


class NewWeights(Callback):
    """Says what became of the head the model did not get trained from its folder (``new_head``: a new task head,
    or one of another task or labels) once that is known: in fit, that the run trains it; in validate, test and
    predict (and ``ftlit export``'s check), before any batch, a refusal, unless a checkpoint restored it."""

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        pl_module.new_head = pl_module.new_head.settled()

    def on_fit_start(self, trainer, pl_module) -> None:
        if pl_module.new_head:
            rank_zero_info(pl_module.new_head.announcement())
        pl_module.new_head = pl_module.new_head.settled()

    def _untrained(self, trainer, pl_module) -> None:
        check_trained_head(pl_module.hparams.model_name_or_path, pl_module.new_head)

    on_validation_start = on_test_start = on_predict_start = _untrained


class MonitorsTaskMetric(Callback):
    """For checkpointing and early stopping: the monitored metric is the task's main one, known once the contract
    is in (at setup). Their state is saved under Lightning's own class name (``saved_as``), so that checkpoints
    written before these subclasses existed resume with their best score and patience."""

    saved_as: type[Callback]

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, self.saved_as.__qualname__, 1)

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.monitor = f"val/{pl_module.monitor}"
        super().setup(trainer, pl_module, stage)


class BestCheckpoint(MonitorsTaskMetric, ModelCheckpoint):
    """Keeps the checkpoint with the best task metric, and the step it was saved at (``best_step``; None in a
    resumed run until it saves one), so that fit can tell whether the weights it ends with are the best."""

    saved_as = ModelCheckpoint
    best_step: int | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        self._noting_best_step(super().on_validation_end, trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._noting_best_step(super().on_train_epoch_end, trainer, pl_module)

    def _noting_best_step(self, hook, trainer, pl_module) -> None:
        best = self.best_model_path
        hook(trainer, pl_module)
        if self.best_model_path != best:  # (a new best is a new file: its name holds the step)
            self.best_step = trainer.global_step


class EarlyStoppingOnTaskMetric(MonitorsTaskMetric, EarlyStopping):
    """Stops when the task metric has not improved for ``patience`` validations."""

    saved_as = EarlyStopping

    def __init__(self, **kwargs) -> None:
        super().__init__(monitor="val/(the task metric, set at setup)", **kwargs)


def fit_checkpoints(mode: str, every_n_steps: int | None, kept: str) -> list[Callback]:
    """The checkpoints fit writes: the best by the monitored metric (lowest or highest, ``mode``), and, for a
    ``resumable`` run, last.ckpt to resume from (every ``every_n_steps`` optimizer steps and every epoch end); for
    ``best_weights``, the best one's weights alone (no optimizer state, no last.ckpt)."""
    weights_only = kept == "best_weights"
    best = BestCheckpoint(
        mode=mode,
        filename="best-epoch{epoch}-step{step}",
        auto_insert_metric_name=False,
        save_weights_only=weights_only,
    )
    if weights_only:
        return [best]
    last = ModelCheckpoint(
        save_top_k=0, save_last=True, every_n_train_steps=every_n_steps, save_on_train_epoch_end=True
    )
    return [best, last]
