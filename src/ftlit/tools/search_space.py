"""The search space of ``ftlit tune``, as a config's ``tune:`` section gives it.

    tune:
      space:
        model.learning_rate: {low: 1.0e-5, high: 3.0e-4, log: true}   # a float range (log scale)
        model.warmup_ratio: {low: 0.0, high: 0.2}                     # a float range
        trainer.max_epochs: {low: 1, high: 3}                         # an int range (both ends ints)
        data.batch_size: [16, 32]                                     # a choice

A range may also say ``type: float`` / ``type: int`` and ``step``; ``{choices: [...]}`` is a choice too.
"""

from dataclasses import dataclass
from typing import Any, Literal

import optuna

from ftlit.errors import FtlitError

SECTIONS = ("model", "data", "trainer")


@dataclass(frozen=True)
class Parameter:
    """One searched setting: ``key`` as on the command line without ``--`` (``model.learning_rate``)."""

    key: str
    kind: Literal["float", "int", "categorical"]
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def example(self) -> Any:
        """A value of the range, to check the key and the value's type against ftlit's parser before a trial."""
        return self.choices[0] if self.kind == "categorical" else self.low


def parse_space(space: object) -> list[Parameter]:
    """The ``tune.space`` mapping as parameters; a clear error for anything that is not a usable range."""
    if not isinstance(space, dict) or not space:
        raise FtlitError("tune.space must map settings (model.*, data.*, trainer.*) to ranges or lists of choices.")
    return [parse_parameter(str(key), spec) for key, spec in space.items()]


def parse_parameter(key: str, spec: object) -> Parameter:
    where = f"tune.space.{key}"
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise FtlitError(f"{where}: a searched setting is model.NAME, data.NAME or trainer.NAME, not {key!r}.")
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise FtlitError(f"{where}: give a range {{low: …, high: …}} or a list of choices, not {spec!r}.")
    unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
    if unknown:
        known = "low, high, log, step, type, choices"
        raise FtlitError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (known: {known}).")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise FtlitError(f"{where}: choices must be a non-empty list.")
        return Parameter(key, "categorical", choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise FtlitError(f"{where}: a range needs both low and high.")
    low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
    for end, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise FtlitError(f"{where}: {end} must be a number, not {value!r}.")
    kind = spec.get("type") or ("int" if isinstance(low, int) and isinstance(high, int) else "float")
    if kind not in ("int", "float"):
        raise FtlitError(f"{where}: type must be int or float for a range (a list gives choices), not {kind!r}.")
    if not low < high:
        raise FtlitError(f"{where}: the range is empty (low {low} is not below high {high}).")
    if log and low <= 0:
        raise FtlitError(f"{where}: a log range must start above 0 (low is {low}).")
    if log and step is not None:
        raise FtlitError(f"{where}: a range is either log or stepped, not both.")
    if kind == "int" and step is not None and not isinstance(step, int):
        raise FtlitError(f"{where}: an int range's step must be a whole number, not {step!r}.")
    if step is not None and not 0 < step <= high - low:
        raise FtlitError(f"{where}: step {step} must be above 0 and at most the range's width {high - low}.")
    return Parameter(key, kind, low=low, high=high, log=log, step=step)
