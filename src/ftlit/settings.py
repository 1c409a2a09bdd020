"""Numeric settings checked when they are given: a value that cannot train (a batch of 0 rows, a negative learning
rate) is refused at once, naming the option, the value and its valid range, instead of failing later inside torch
or datasets."""

import math

from ftlit.errors import FtlitError


def describe_range(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    include_minimum: bool = True,
    include_maximum: bool = True,
    allow_none: bool = False,
) -> str:
    """How a range reads in messages (and in the options' help): ``≥ 1``, ``> 0``, ``between 0 and 1``, ``strictly
    between 0 and 1``, ``≥ 0 and < 1``; ``, or null`` when None is allowed."""
    low = "≥" if include_minimum else ">"
    high = "≤" if include_maximum else "<"
    if minimum is not None and maximum is not None:
        if include_minimum == include_maximum:
            text = f"{'' if include_minimum else 'strictly '}between {minimum:g} and {maximum:g}"
        else:
            text = f"{low} {minimum:g} and {high} {maximum:g}"
    elif minimum is not None:
        text = f"{low} {minimum:g}"
    elif maximum is not None:
        text = f"{high} {maximum:g}"
    else:
        text = "a finite number"
    return f"{text}, or null" if allow_none else text


def check_range(
    option: str,
    value: float | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    include_minimum: bool = True,
    include_maximum: bool = True,
    allow_none: bool = False,
) -> None:
    """Refuse ``value`` of ``option`` (as the command line names it, e.g. ``--data.batch_size``) outside its range.

    A bound left out is open (NaN and infinities are refused everywhere); ``allow_none`` accepts None (the option's
    "not set")."""
    if value is None and allow_none:
        return
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    within = (
        is_number
        and math.isfinite(value)
        and (minimum is None or (value >= minimum if include_minimum else value > minimum))
        and (maximum is None or (value <= maximum if include_maximum else value < maximum))
    )
    if not within:
        bounds = describe_range(
            minimum, maximum, include_minimum=include_minimum, include_maximum=include_maximum, allow_none=allow_none
        )
        raise FtlitError(f"{option} must be {bounds}, got {value!r}.")


#: Trainer settings whose 0 trains no step (which Lightning accepts), with their valid values
TRAINING_LENGTH = {
    "max_epochs": "≥ 1, or -1 for no limit",
    "max_steps": "≥ 1, or -1 for no limit",
    "limit_train_batches": "> 0 (a fraction of each epoch's batches up to 1.0, or a number of batches)",
}


def check_trains_a_step(trainer_settings: dict) -> None:
    """Refuse, before any work, Trainer settings for ``fit`` that train no step."""
    for option, bounds in TRAINING_LENGTH.items():
        if trainer_settings.get(option) == 0:
            raise FtlitError(
                f"--trainer.{option} {trainer_settings[option]} trains no step: it must be {bounds}. To evaluate "
                "without training, use `ftlit validate`."
            )
