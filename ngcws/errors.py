"""The one error tree of ngcws.

Every failure meant for a person is an :class:`NgcwsError`. The CLI has a single boundary that
prints ``error.message`` (and ``error.hint``) and exits with ``error.exit_code``; nothing else
reaches the user as a traceback.

* NgcwsError                      exit 1
  x ConfigError                   exit 2  ngcws.yaml (or .env / env_file) is wrong; nothing touched
    + ConfigNotFound              exit 2  no ngcws.yaml here or in any parent
  x UsageError                    exit 2  a command-line mistake (unknown workspace, bad flag mix)
  x OwnershipError                exit 1  a container ngcws wants to use is not its own
  x LockError                     exit 1  the project lock cannot be taken
    + LockTimeout                 exit 1  another ngcws holds this project's lock for too long
    + AlreadyWatching             exit 1  another `ngcws up --watch` follows this project and folder
  x NotRunning                    exit 1  exec/shell on a workspace that is not running
  x HeldBack                      exit 1  a recreate or removal would destroy something (guard.py)
  x NotApplied                    exit 1  a workspace joining the network of one whose `up` failed was left alone
  x ApplyFailed                   exit 1  several workspaces of one `up`/`down` failed (the others were
                                          applied); each named with its own message; the highest exit code
  x EngineError                   exit 1  the Docker engine refused or failed a request
    + EngineUnavailable           exit 1  no engine answers on DOCKER_HOST / the socket
    + EngineProtocolError         exit 1  the engine's answer cannot be trusted: malformed framing, a body
                                          cut short, not JSON where JSON was due, no answer in time
      + EngineConnectionLost      exit 1  the connection to the engine dropped mid-answer (a pull or an
                                          event stream cut half-way); a long-lived reader may reconnect
    + ImageNotFound               exit 1  the image (or its tag) does not exist, locally or remotely
    + RegistryAuthError           exit 1  the registry wants credentials (401/403)
    + ContainerStartError         exit 1  the engine created a container but could not start it
  x PreflightError                exit 1  `up`/`run` found, before touching anything, that creation would fail
  x SchedulerError                exit 1  Slurm refused or failed a command (sbatch, squeue, scancel)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: ``ngcws run``'s exit code when ngcws or the engine failed (not the command), as ``docker run``'s 125.
RUN_FAILED = 125


class NgcwsError(Exception):
    """Base class: a message for a person, an optional hint, and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(NgcwsError):
    """The configuration is invalid; ``message`` names file:line:col and the field path."""

    exit_code = 2


class ConfigNotFound(ConfigError):
    """No ngcws.yaml was found."""


class UsageError(NgcwsError):
    """A command-line mistake."""

    exit_code = 2


class OwnershipError(NgcwsError):
    """A container with the name ngcws wants belongs to someone else; it is never touched."""


class LockError(NgcwsError):
    """The per-project lock cannot be opened."""


class LockTimeout(LockError):
    """Another ngcws process holds this project's lock for too long."""


class AlreadyWatching(LockError):
    """One watcher per project and folder."""


class NotRunning(NgcwsError):
    """The workspace has no running container."""


class HeldBack(NgcwsError):
    """The guard (:mod:`ngcws.guard`) holds back a recreate or removal; ``holds`` says why."""

    def __init__(self, holds: Sequence[Any], *, force: str, applied: bool = False) -> None:
        lines = []
        for hold in holds:
            lines.append(f"{hold.workspace}: {hold.reason}")
            lines.append(f"  {hold.remedy}")
        names = ", ".join(sorted({hold.workspace for hold in holds}))
        done = f"{names}: nothing was changed; everything else was done" if applied else "Nothing was changed"
        super().__init__(
            f"held back: {names} would lose work\n" + "\n".join(lines),
            hint=f"{done}. To go ahead and lose it: `{force}`.",
        )
        self.holds = tuple(holds)


class NotApplied(NgcwsError):
    """A workspace left alone because one it needs first (``network_mode: container:``) failed."""


class ApplyFailed(NgcwsError):
    """Several chains of one ``up`` or ``down`` failed (parallel.py); everything else was applied."""

    def __init__(self, failures: Sequence[tuple[str, NgcwsError]]) -> None:
        lines = []
        for key, error in failures:
            lines.append(f"{key}: {error.message}" if key else error.message)
            lines.extend(f"  {line}" for line in (error.hint or "").splitlines())
        names = ", ".join(key for key, _ in failures if key) or "several"
        super().__init__(
            f"{names} failed\n" + "\n".join(lines), hint="Everything else was applied. Fix these and run it again."
        )
        self.failures = tuple(failures)
        self.exit_code = max(error.exit_code for _, error in failures)


class EngineError(NgcwsError):
    """The Docker engine refused or failed a request."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class EngineUnavailable(EngineError):
    """No Docker engine answers."""


class EngineProtocolError(EngineError):
    """The engine's answer is malformed or incomplete; nothing of it is used."""


class EngineConnectionLost(EngineProtocolError):
    """The connection to the engine closed before the answer was complete."""


class ImageNotFound(EngineError):
    """The image reference does not exist."""


class RegistryAuthError(EngineError):
    """The registry refused our (absent or wrong) credentials."""


class ContainerStartError(EngineError):
    """The container was created but did not start."""


class PreflightError(NgcwsError):
    """The host cannot run a workspace as written (no GPU support, driver too old, memlock): nothing was touched."""


class SchedulerError(NgcwsError):
    """A cluster scheduler (Slurm) refused or failed a command, or is not installed."""
