"""One run per output folder: an exclusive lock file, held for the run's lifetime, so that two runs started at once
never write into the same folder (one would crash, or silently replace the other's export)."""

import json
import os
import socket
import time
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_warn

from ftlit.errors import FtlitError

LOCK_NAME = ".ftlit.lock"
_held: list["FolderLock"] = []  # the locks this process holds, released when its command ends


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


class FolderLock:
    """``acquire()`` until ``release()`` (or ``release_held()``, at the end of a command) holds
    ``folder/.ftlit.lock``, which names the holder (host, pid, start time). A lock left by a process that has died
    on this host is taken over with a notice; a live holder (or one on another host, which cannot be checked) makes
    ``acquire`` refuse."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.created_folders: list[Path] = []
        self.held = False

    def acquire(self) -> None:
        self.created_folders = [folder for folder in (self.folder, *self.folder.parents) if not folder.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):  # a second try after taking over a stale lock
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(descriptor, "w") as file:
                json.dump(holder, file)
            self.held = True
            _held.append(self)
            return
        raise FtlitError(f"Could not lock {self.folder}: {self.path} keeps coming back.")

    def _take_over_if_stale(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            holder = {}
        same_host = holder.get("host") == socket.gethostname()
        if same_host and isinstance(holder.get("pid"), int) and not process_alive(holder["pid"]):
            rank_zero_warn(
                f"Taking over {self.path}: its run (pid {holder['pid']}, started {holder.get('started')}) "
                "is no longer running."
            )
            self.path.unlink(missing_ok=True)
            return
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')}"
        raise FtlitError(
            f"{self.folder} is in use by another ftlit run ({who}). Give this run another --output_dir (or wait for "
            f"that one to finish); if no run is using it, delete {self.path}."
        )

    def release(self) -> None:
        """Give the lock up; folders that acquiring created and nothing else filled are removed again (a run that
        stops before its first step leaves nothing behind)."""
        if not self.held:
            return
        self.path.unlink(missing_ok=True)
        self.held = False
        _held.remove(self)
        for folder in self.created_folders:  # innermost first; each only when nothing else filled it
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def release_held() -> None:
    """Release every lock this process holds (at the end of a command, whichever way it ends)."""
    for lock in reversed(_held):
        lock.release()
