"""How many trials a study of ``ftlit tune`` runs: exactly ``n_trials`` finished (complete or pruned) ones, counted
over every worker of the study.

Optuna's ``MaxTrialsCallback`` stops a worker once ``n_trials`` are finished, but only after its own trial ends: two
workers started together both begin a trial, and a worker whose trial ends while another's runs begins one more
(3 trials for ``n_trials: 2``). So a trial also counts while it runs: a worker begins a trial only while the
finished trials and those running ahead of it (begun earlier, by any worker) are fewer than ``n_trials``; where
they are not, and too few are finished, it waits for the running ones. A running trial that fails stops counting:
its worker's, at once; a dead worker's, once Optuna's heartbeat check marks it failed.
"""

import time
import warnings
from collections.abc import Sequence
from typing import Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_S = 5.0  # how often a waiting worker looks at the study again

Verdict = Literal["run", "wait", "done"]


class NotNeeded(Exception):
    """A trial begun while the study was completed by other workers (workers asking at the same moment): it runs
    nothing, is recorded as failed, and does not count."""


def verdict(trials: Sequence[FrozenTrial], n_trials: int, number: int | None = None) -> Verdict:
    """Whether a worker runs a trial (``number``: the trial it has begun; None: before it asks for one): ``done``
    once ``n_trials`` are finished; ``run`` while the finished ones and those running ahead of it are fewer; else
    ``wait`` (for the running ones to finish or fail)."""
    finished = sum(trial.state in FINISHED for trial in trials)
    if finished >= n_trials:
        return "done"
    running = sum(
        trial.state == TrialState.RUNNING and (number is None or trial.number < number)
        for trial in trials
        if trial.number != number
    )
    return "run" if finished + running < n_trials else "wait"


def await_verdict(study: optuna.Study, n_trials: int, number: int | None = None) -> Verdict:
    """``verdict`` on the study, waiting while it is ``wait``; a dead worker's trial is marked failed on the way
    (Optuna's heartbeat check, with RDB storages), so a study never waits for it for good."""
    said = False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        found = verdict(trials, n_trials, number)
        if found != "wait":
            return found
        if not said:
            running = sum(t.state == TrialState.RUNNING and t.number != number for t in trials)
            print(f"Waiting for {running} trial(s) of other workers (a dead worker's: until its heartbeat is stale).")
            said = True
        time.sleep(POLL_S)


class TrialBudget:
    """Optuna callback: after each trial, stop this worker once the study needs no more trials (waiting, while too
    few are finished, for the trials other workers run)."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if await_verdict(study, self.n_trials) == "done":
            study.stop()

    def claim(self, study: optuna.Study, trial: optuna.Trial) -> None:
        """At the start of a trial: raise NotNeeded (and stop this worker) if it is one too many."""
        if await_verdict(study, self.n_trials, trial.number) == "done":
            study.stop()
            raise NotNeeded(f"not needed: {self.n_trials} trials were finished by other workers")
