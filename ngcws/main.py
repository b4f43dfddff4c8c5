"""The console entry point and the CLI's one error boundary.

A user mistake or an engine refusal becomes a message (and hint) on stderr and the error's exit
code; never a traceback. Anything else is a bug: a one-line message and exit 70 (EX_SOFTWARE),
with the traceback only under ``NGCWS_DEBUG=1``. ``exec``, ``up`` and ``ps`` take the lean path of
:mod:`ngcws.fastpath`.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from ngcws.errors import NgcwsError


def main(argv: list[str] | None = None) -> NoReturn:
    from ngcws.fastpath import dispatch

    args = sys.argv[1:] if argv is None else argv
    try:
        fast = dispatch(args)
        if fast is not None:
            sys.exit(fast())
        from ngcws.cli import app

        app(args=args, prog_name="ngcws")
    except NgcwsError as error:
        from ngcws.present import Console

        Console().error(error.message, error.hint)
        sys.exit(error.exit_code)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as error:  # a file or socket problem no layer anticipated: still no traceback
        from ngcws.present import Console

        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        Console().error(f"{error.strerror or error}{where}", None)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # a bug in ngcws: still a message, the traceback only on request
        import os

        if os.environ.get("NGCWS_DEBUG"):
            raise
        from ngcws.present import Console

        Console().error(
            f"internal error: {type(error).__name__}: {error}",
            "This is a bug in ngcws. Run again with NGCWS_DEBUG=1 to see the traceback, and report it.",
        )
        sys.exit(70)
    sys.exit(0)
