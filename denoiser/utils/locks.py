"""A lock file that one process holds at a time: RUN/lock for a trainer, CACHE.npy.lock for a cache being filled.

The lock itself is the operating system's advisory lock on the open file (`fcntl.flock`, on Linux and macOS):
taking it is atomic, and it is let go when its process ends, however it ends, so a killed holder never leaves
a lock that another process must decide to take over. The file also names its holder, {"pid", "host"}, for
the message a second process gets, and because network drives do not pass such locks between machines: a
name of another machine is respected until that machine removes it (or the user does).

    with acquire_lock("runs/x/lock") as lock:    # raises LockHeld while another process holds it
        ...                                        # lock.previous: what a holder that is gone left in the file
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket

NO_OS_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # a file system without flock: trust the name only


def holder_name(holder: dict | None, unknown: str = "another process") -> str:
    """ "process 123 on HOST" for a lock file's holder, or `unknown` while it has not written its name yet."""
    return f"process {holder['pid']} on {holder['host']}" if holder else unknown


class LockHeld(RuntimeError):
    """Another process holds the lock; `holder` is its {"pid", "host"} (None while it is writing them)."""

    def __init__(self, path: str, holder: dict | None):
        self.path, self.holder = path, holder
        super().__init__(f"{path} is held by {holder_name(holder)}")


def this_process() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname()}


class HeldLock:
    """A lock file this process holds (see `acquire_lock`); `previous` is what a holder that is gone left in it."""

    def __init__(self, path: str, handle: int, previous: dict | None):
        self.path, self.handle, self.previous = path, handle, previous

    def release(self) -> None:
        """Remove the file while still holding it, then let go: a process that opened it meanwhile sees that
        it was removed and locks the next one, so two processes never both hold the lock."""
        if self.handle is None:
            return
        if read_holder(self.path) == this_process():
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        os.close(self.handle)
        self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.release()


def acquire_lock(path: str | os.PathLike, wait: bool = False, on_wait=None) -> HeldLock:
    """Lock the file `path` (made if missing) and write this process's name into it.

    Held by another process: raise LockHeld, or with `wait`, call `on_wait(holder)` once and wait until free.
    """
    path = os.fspath(path)
    handle, os_locked = _lock_open_file(path, wait, on_wait)
    previous = read_holder(path)
    if previous is not None and _may_run(previous, os_locked):
        os.close(handle)
        raise LockHeld(path, previous)
    os.ftruncate(handle, 0)
    os.pwrite(handle, json.dumps(this_process()).encode(), 0)
    os.fsync(handle)
    return HeldLock(path, handle, previous)


def _lock_open_file(path: str, wait: bool, on_wait) -> tuple[int, bool]:
    """Open and lock `path` (made if missing); returns the descriptor and whether the OS lock is held."""
    while True:
        handle = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os_locked = _flock(handle, path, wait, on_wait)
        except BaseException:
            os.close(handle)
            raise
        if _is_still_at(handle, path):
            return handle, os_locked
        os.close(handle)  # its holder removed it after we opened it: lock the file now at `path`


def _flock(handle: int, path: str, wait: bool, on_wait) -> bool:
    """Take the OS lock on `handle`: True once held, False where the file system has no such locks."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            raise LockHeld(path, read_holder(path)) from None
        if on_wait is not None:
            on_wait(read_holder(path))
        fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError as error:
        if error.errno not in NO_OS_LOCKS:
            raise
        return False
    return True


def _is_still_at(handle: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False


def _may_run(holder: dict, os_locked: bool) -> bool:
    """Whether the holder a lock file names may still run, although we could take the file's lock."""
    if holder["host"] != socket.gethostname():
        return True  # another machine's processes cannot be checked from here
    if os_locked:
        return False  # on this host a running holder would still hold the OS lock
    return holder["pid"] == os.getpid() or process_runs(holder["pid"])


def process_runs(pid: int) -> bool:
    """Whether a process with this pid exists on this host (True when it cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: str) -> dict | None:
    """The {"pid", "host"} a lock file names, or None while it is empty, unreadable or gone."""
    with contextlib.suppress(OSError, ValueError):
        with open(path) as handle:
            holder = json.load(handle)
        if isinstance(holder, dict) and {"pid", "host"} <= set(holder):
            return holder
    return None
