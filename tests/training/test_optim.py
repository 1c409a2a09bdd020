"""The optimizer and the learning-rate schedule are chosen in the config (LightningCLI's dependency injection); the
default stays AdamW with a linear warmup and decay, and biases/LayerNorm weights never decay with any optimizer."""

import math
from functools import partial

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.training.model_callbacks import BestCheckpoint, EarlyStoppingOnTaskMetric
from ftlit.training.optim import WarmupDecay, checked_optimizer, fusable, parameter_groups


def lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return seen


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_warmup_rises_linearly_then_each_shape_decays_as_transformers_does():
    assert lrs(WarmupDecay(optimizer(), "linear", num_warmup_steps=2, num_training_steps=6), 7) == pytest.approx(
        [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    )
    cosine = [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(5)]
    assert lrs(WarmupDecay(optimizer(), "cosine", num_warmup_steps=2, num_training_steps=6), 7) == pytest.approx(
        [0.0, 0.5, *cosine]
    )
    assert lrs(WarmupDecay(optimizer(), "constant", num_warmup_steps=2, num_training_steps=6), 5) == [0, 0.5, 1, 1, 1]
    with pytest.raises(ValueError, match="needs num_warmup_steps and num_training_steps"):
        WarmupDecay(optimizer(), "linear")


def test_matrices_decay_and_biases_and_layer_norms_do_not():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    model[1].weight.requires_grad_(False)  # frozen parameters are left out
    decayed, kept = parameter_groups(list(model.parameters()), learning_rate=0.1, weight_decay=0.01)
    assert [p.shape for p in decayed["params"]] == [(3, 3)] and decayed["weight_decay"] == 0.01
    assert [p.shape for p in kept["params"]] == [(3,), (3,)] and kept["weight_decay"] == 0.0
    assert decayed["lr"] == kept["lr"] == 0.1


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_bert, sentiment_files):
    """A config file as a user writes one, without optimizer or schedule (the tests add them)."""
    path = tmp_path_factory.mktemp("config") / "sentiment.yaml"
    path.write_text(yaml.safe_dump({
        "trainer": {"max_steps": 4, "limit_val_batches": 0, "enable_progress_bar": False},
        "model": {"class_path": "ftlit.SequenceClassificationModule",
                  "init_args": {"model_name_or_path": tiny_bert, "learning_rate": 0.05, "warmup_steps": 2}},
        "data": {"class_path": "ftlit.ClassificationDataModule",
                 "init_args": {"train_file": str(sentiment_files["train"]), "text_fields": ["text"],
                               "max_length": 32, "batch_size": 16}},
    }))  # fmt: skip
    return path


def fit(config_file, out, *choices: str) -> dict:
    main(["fit", "--config", str(config_file), "--trainer.default_root_dir", str(out), "--output_dir", str(out),
          "--model.checkpoint_every_n_steps", "4", *choices])  # fmt: skip
    return torch.load(next(out.glob("lightning_logs/version_0/checkpoints/last.ckpt")), weights_only=True)


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_default_is_adamw_with_a_linear_warmup_and_decay(config_file, tmp_path):
    checkpoint = fit(config_file, tmp_path)
    groups = checkpoint["optimizer_states"][0]["param_groups"]
    assert "betas" in groups[0] and groups[0]["eps"] == 1e-8  # AdamW
    assert [group["weight_decay"] for group in groups] == [0.01, 0.0]
    assert groups[0]["lr"] == pytest.approx(0.0)  # the linear decay ends at zero after the last step
    assert checkpoint["lr_schedulers"][0]["shape"] == "linear"
    # the step counts are the run's: a resumed (say, longer) run gives them anew
    assert "num_training_steps" not in checkpoint["lr_schedulers"][0]


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_sgd_with_momentum_and_a_schedule_of_ftlit_from_the_config(config_file, tmp_path):
    checkpoint = fit(config_file, tmp_path, "--model.optimizer", "torch.optim.SGD", "--model.optimizer.momentum",
                     "0.9", "--model.lr_scheduler", "ftlit.training.optim.WarmupDecay", "--model.lr_scheduler.shape",
                     "constant")  # fmt: skip
    groups = checkpoint["optimizer_states"][0]["param_groups"]
    assert [group["momentum"] for group in groups] == [0.9, 0.9] and "betas" not in groups[0]
    assert [group["weight_decay"] for group in groups] == [0.01, 0.0]  # the no-decay grouping holds for SGD too
    assert checkpoint["lr_schedulers"][0]["shape"] == "constant"
    assert groups[0]["lr"] == pytest.approx(0.05)  # warmed up over 2 steps, then held (linear would end at 0)
    assert checkpoint["hyper_parameters"]["optimizer"]["class_path"] == "torch.optim.SGD"  # resumable from its config


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_any_torch_schedule_is_stepped_once_per_optimizer_step(config_file, tmp_path):
    checkpoint = fit(config_file, tmp_path, "--model.lr_scheduler", "torch.optim.lr_scheduler.StepLR",
                     "--model.lr_scheduler.step_size", "2", "--model.lr_scheduler.gamma", "0.5")  # fmt: skip
    groups = checkpoint["optimizer_states"][0]["param_groups"]
    assert groups[0]["lr"] == pytest.approx(0.05 * 0.5**2)  # 4 steps: halved after steps 2 and 4
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 4


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_a_plateau_schedule_steps_on_the_task_metric_once_per_validation(config_file, tmp_path):
    checkpoint = fit(config_file, tmp_path, "--trainer.max_steps", "-1", "--trainer.max_epochs", "2",
                     "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1.0", "--model.lr_scheduler",
                     "torch.optim.lr_scheduler.ReduceLROnPlateau", "--model.lr_scheduler.mode", "max")  # fmt: skip
    plateau = checkpoint["lr_schedulers"][0]
    # stepped once per epoch, on the validation accuracy (last.ckpt is saved before the second epoch's step)
    assert plateau["mode"] == "max" and plateau["last_epoch"] == 1
    assert 0 <= plateau["best"] <= 1  # the best validation accuracy it has seen


def test_fused_kernels_only_where_the_optimizer_takes_them():
    assert fusable({"fused": None, "foreach": None, "differentiable": False})  # AdamW, SGD … as configured
    assert not fusable({"fused": None, "foreach": True})  # torch refuses fused and foreach together
    assert not fusable({"fused": False})  # turned off in the config
    assert not fusable({"momentum": 0.9})  # an optimizer without the option


def test_checkpoint_and_early_stopping_state_keeps_lightnings_name(tmp_path):
    # checkpoints written before ftlit's subclasses resume with their best score and patience
    best = BestCheckpoint(mode="max", dirpath=tmp_path)
    stopping = EarlyStoppingOnTaskMetric(mode="max", patience=2)
    best.monitor = stopping.monitor = "val/f1"
    plain_best, plain_stopping = ModelCheckpoint(monitor="val/f1", mode="max"), EarlyStopping("val/f1", mode="max")
    assert best.state_key == plain_best.state_key and stopping.state_key == plain_stopping.state_key


def as_parsed(cls: type, **keywords) -> partial:
    """An optimizer or schedule option as jsonargparse gives it: a partial of its instantiator, the class among the
    arguments, every init argument (defaults too) among the keywords."""
    return partial(lambda instantiator, made, *args, **kwargs: made(*args, **kwargs), None, cls, **keywords)


@pytest.mark.parametrize(
    ("optimizer", "lr_scheduler", "message"),
    [
        (as_parsed(torch.optim.SGD, momentum=-1.0, lr=0.001), None,
         "--model.optimizer torch.optim.SGD refused --model.optimizer.momentum -1.0: Invalid momentum value: -1.0."),
        (as_parsed(torch.optim.Adam, betas=(1.5, 0.9)), None,
         "refused --model.optimizer.betas (1.5, 0.9): Invalid beta"),
        (None, as_parsed(torch.optim.lr_scheduler.ReduceLROnPlateau, mode="min", factor=2.0),
         "--model.lr_scheduler torch.optim.lr_scheduler.ReduceLROnPlateau refused --model.lr_scheduler.factor 2.0"),
        (None, as_parsed(torch.optim.lr_scheduler.ReduceLROnPlateau, mode="sideways"),
         "refused --model.lr_scheduler.mode 'sideways'"),
    ],
)  # fmt: skip
def test_optimizer_and_schedule_values_they_refuse_are_refused_naming_the_option(optimizer, lr_scheduler, message):
    with pytest.raises(FtlitError) as refused:
        checked_optimizer(optimizer, lr_scheduler, "max")
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("given", "monitor_mode", "mode"),
    [("min", "max", "max"), ("min", "min", "min"), ("max", "min", "max"), ("max", "max", "max")],
)
def test_a_plateau_schedule_left_at_min_follows_the_main_metric(given, monitor_mode, mode):
    schedule = as_parsed(torch.optim.lr_scheduler.ReduceLROnPlateau, mode=given, patience=2)
    optimizer, checked = checked_optimizer(None, schedule, monitor_mode)
    assert optimizer is None and checked.keywords == {"mode": mode, "patience": 2}
    other = as_parsed(torch.optim.lr_scheduler.StepLR, step_size=2)
    assert checked_optimizer(None, other, "max")[1] is other  # (no mode to set)


def test_class_paths_of_a_module_loaded_outside_the_cli_are_left_as_they_are():
    # load_from_checkpoint hands the module the config's class paths: they train nothing, so nothing is refused
    paths = {"class_path": "torch.optim.SGD", "init_args": {"momentum": -1}}, {"class_path": "torch.optim.X"}
    assert checked_optimizer(*paths, "max") == paths
