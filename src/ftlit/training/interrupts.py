"""How every command ends on SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption), whatever it is doing: at once,
with exit code 130 / 143 and one line saying what the stop kept and how to go on. (Within training steps,
ResumableTraining lets the step finish and saves a checkpoint first.)"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ftlit.errors import TrainingInterrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: What a stop keeps before a command has written anything (a resumed run's checkpoint is as it was)
WROTE_NOTHING = "this command wrote nothing; run the same command again"

_kept = [WROTE_NOTHING]  # what a stop keeps now, and how to go on: the command updates it as it goes (keep)
_received: list[int] = []  # the stops stop_on_interrupt raised, in case a library swallowed one (stop_if_received)


def keep(kept: str) -> None:
    """From now on, a stop says that it kept ``kept`` (and how to go on)."""
    _kept[0] = kept


def stopped(signum: int, kept: str) -> TrainingInterrupted:
    """The stop by ``signum``, saying what it ``kept``: exit code 128 + signum."""
    return TrainingInterrupted(f"Interrupted by {signal.Signals(signum).name}: {kept}.", signum)


def stop_on_interrupt(signum: int, frame) -> None:
    """The handler of both signals outside training steps (loading data, evaluating, exporting): stop at once."""
    _received.append(signum)
    raise stopped(signum, _kept[0])


def stop_if_received() -> None:
    """Stop now if a signal came that has not stopped the command: code that catches every exception (a progress
    bar's, while a model's weights load) can swallow the stop ``stop_on_interrupt`` raised."""
    if _received:
        raise stopped(_received[-1], _kept[0])


@contextmanager
def handling(handler: Callable) -> Iterator[None]:
    """Within the block, ``handler(signum, frame)`` handles SIGINT and SIGTERM; the handlers before it come back at
    its end. (In the main thread only: Python lets no other thread set handlers, nor receive signals.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


@contextmanager
def stops_handled() -> Iterator[None]:
    """Around a whole command: SIGINT and SIGTERM stop it at once (``stop_on_interrupt``), saying that it wrote
    nothing until it says otherwise (``keep``)."""
    keep(WROTE_NOTHING)
    _received.clear()
    with handling(stop_on_interrupt):
        yield


@contextmanager
def deferred(then: str | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM take effect when the block ends, not within it: what it moves into place is moved whole
    (files that belong together, together). ``then``: what a stop keeps once the block has run."""
    received: list[int] = []
    try:
        with handling(lambda signum, frame: received.append(signum)):
            yield
            if then:
                keep(then)
    finally:
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)  # (handled before this returns: by an enclosing block, or the command's)


def outputs_first(folder: Path) -> AbstractContextManager:
    """``deferred`` around the writing of a command's outputs to ``folder``: a stop waits until they are whole."""
    return deferred(f"the outputs in {folder} were written first, complete: nothing is left to do")
