"""Per-project locks: one so two ngcws processes never race on one project's containers, and one
held by the project's watcher (``ngcws up --watch``) for as long as it runs.

Each is an ``flock``: the kernel releases it when its holder ends, however it ends (even SIGKILL),
so a lock file left behind never blocks anyone. The holder writes who it is into the file, so a
waiting ngcws can say what it waits for, and ``ngcws ps`` which watcher runs.

Where: one folder every ngcws process on the host agrees on, whatever its ``TMPDIR`` (a Slurm job
and a user's shell often differ): ``/tmp/ngcws-locks``, or ``$NGCWS_LOCK_DIR`` when set (then every
process that must exclude each other needs the same value). It is shared by every user, like
``/tmp``: made mode 1777 (sticky) by whoever creates it. Since others can create names in it, a
file is only ever opened through the folder's descriptor, without following a symlink, and must
be a plain file with one link: a planted symlink or hard link is refused, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterator

from ngcws.errors import AlreadyWatching, LockError, LockTimeout

#: Not ``tempfile.gettempdir()``: it follows ``TMPDIR``, and two processes must find the same folder.
LOCK_DIR = os.environ.get("NGCWS_LOCK_DIR") or "/tmp/ngcws-locks"


@contextlib.contextmanager
def project_lock(project: str, directory: str, on_wait: Callable[[str], None], timeout: float = 300) -> Iterator[None]:
    """Hold the lock of (project, folder); call ``on_wait(holder)`` once if another process holds it."""
    path = lock_path(project, directory, "lock")
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(_holder(fd))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockTimeout(
                            f"another ngcws has held project {project!r} for over {timeout:.0f} s; giving up",
                            hint=f"If no other ngcws is running, remove {path}.",
                        ) from None
                    time.sleep(0.1)
        _claim(fd)
        yield
    finally:
        os.close(fd)


def lock_path(project: str, directory: str, kind: str) -> str:
    """The file of one of (project, folder)'s locks and records (``lock``, ``watch``, ``stopped``)."""
    digest = hashlib.sha256(f"{project}\0{directory}".encode()).hexdigest()[:16]
    return os.path.join(LOCK_DIR, f"{project}-{digest}.{kind}")


def _open(path: str) -> int:
    """Open (creating it) the lock or record file ``path`` in :data:`LOCK_DIR`, read-write."""
    fd = open_in_lock_dir(os.path.basename(path), create=True)
    assert fd is not None
    return fd


def open_in_lock_dir(name: str, create: bool, write: bool | None = None) -> int | None:
    """A descriptor of the file ``name`` in :data:`LOCK_DIR` (read-write if ``write``, by default
    when ``create``; None when it does not exist and is not to be created). Raises
    :class:`LockError` for a folder or file that is not what ngcws makes: a symlink, a hard link,
    a world-writable folder without the sticky bit."""
    folder = _folder(create)
    if folder is None:
        return None
    path = os.path.join(LOCK_DIR, name)
    flags = (os.O_RDWR if create or write else os.O_RDONLY) | (os.O_CREAT if create else 0)
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o666, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _refused(path, exc) from None
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise LockError(
            f"refusing the project lock {path}: not a plain file of its own (a link?)",
            hint=f"Someone made it; if no ngcws is running, remove {path}.",
        )
    if create and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != 0o666:
        os.fchmod(fd, 0o666)  # the umask narrowed it: every user's ngcws locks here
    return fd


def _folder(create: bool) -> int | None:
    """A descriptor of :data:`LOCK_DIR` (made mode 1777 if missing and ``create``), never through a symlink."""
    made = False
    if create:
        try:
            os.makedirs(os.path.dirname(LOCK_DIR) or "/", exist_ok=True)
            os.mkdir(LOCK_DIR, 0o700)
            made = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise _refused(LOCK_DIR, exc) from None
    try:
        folder = os.open(LOCK_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise _refused(LOCK_DIR, FileNotFoundError(2, "removed while in use")) from None
        return None
    except OSError as exc:
        raise _refused(LOCK_DIR, exc) from None
    info = os.fstat(folder)
    if made:
        os.fchmod(folder, 0o1777)  # shared by every user, like /tmp
    elif info.st_uid != os.getuid() and info.st_mode & 0o002 and not info.st_mode & stat.S_ISVTX:
        os.close(folder)  # anyone could rename files in it: nothing there can be trusted
        raise LockError(
            f"refusing the lock folder {LOCK_DIR}: writable by everyone without the sticky bit",
            hint=f"Make it sticky (chmod 1777 {LOCK_DIR}), or set NGCWS_LOCK_DIR to another folder.",
        )
    return folder


def _refused(path: str, exc: OSError) -> LockError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return LockError(
            f"refusing the project lock {path}: it is a symlink (or not a folder), never followed here",
            hint=f"If you did not make it, someone else did: remove {path}, or set NGCWS_LOCK_DIR.",
        )
    return LockError(
        f"cannot open the project lock {path}: {exc.strerror}",
        hint=f"Make {LOCK_DIR} writable for everyone (chmod 1777), as /tmp is, or set NGCWS_LOCK_DIR.",
    )


@contextlib.contextmanager
def watcher_slot(project: str, directory: str) -> Iterator[None]:
    """Be (project, folder)'s one watcher, or raise :class:`AlreadyWatching` naming the running one."""
    path = lock_path(project, directory, "watch")
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = _watcher_info(fd)
            pid = f"{found['pid']:.0f}" if found else "?"
            raise AlreadyWatching(
                f"another ngcws is already watching project {project!r} in {directory} (pid {pid})",
                hint="Stop it first (Ctrl-C in its terminal, or `kill PID`); `ngcws ps` shows it.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)


def running_watcher(project: str, directory: str) -> dict[str, float] | None:
    """``{"pid": ..., "since": epoch}`` of the project's running watcher, or None."""
    try:
        fd = open_in_lock_dir(os.path.basename(lock_path(project, directory, "watch")), create=False)
    except LockError:
        return None
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _watcher_info(fd)
    finally:
        os.close(fd)
    return None


def _watcher_info(fd: int) -> dict[str, float] | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0))
        return {"pid": int(data["pid"]), "since": float(data["since"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _claim(fd: int) -> None:
    """Say who holds the lock: ``pid command``."""
    import sys

    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} ngcws {' '.join(sys.argv[1:])}"[:200].encode(), 0)


def _holder(fd: int) -> str:
    """Who holds the lock, as the holder wrote it: ``ngcws up (pid 1234)``."""
    try:
        text = os.pread(fd, 256, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another ngcws"
    return f"`{command.strip() or 'ngcws'}` (pid {pid})"
