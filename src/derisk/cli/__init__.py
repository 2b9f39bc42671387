"""The derisk command line: the only place that prints for the user and decides exit codes.

Each capability keeps its commands in a module of this package (``watch``, ``know``, ``detect``,
``screen``, ``reduce``, ``web``) that exposes ``register(group)``. Library code raises
:class:`derisk.errors.DeriskError`; :func:`main` turns it into one line on standard error and the
documented exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Final

import click

from derisk import __version__, interrupts
from derisk.errors import EXIT_CODES, EXIT_INTERRUPTED, DeriskError, UsageError
from derisk.safetext import visible

#: Command modules, in the order their commands appear in ``derisk --help``.
COMMAND_MODULES: Final[tuple[str, ...]] = (
    "derisk.cli.watch",
    "derisk.cli.scale",
    "derisk.cli.live",
    "derisk.cli.collect",
    "derisk.cli.data",
    "derisk.cli.demo",
    "derisk.cli.reduce",
    "derisk.cli.know",
    "derisk.cli.screen",
    "derisk.cli.detect",
    "derisk.cli.web",
    "derisk.cli.schema",
)

_EPILOG = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_EPILOG,
)
@click.version_option(__version__, "--version", "-V", prog_name="derisk")
@click.option("-v", "--verbose", count=True, help="More detail on standard error (repeat for debug).")
def cli(verbose: int) -> None:
    """derisk: who controls the other end of your network traffic, and which laws reach them.

    Decision support for the people who guard critical infrastructure, not legal advice.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="derisk: %(levelname)s: %(message)s", stream=sys.stderr)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def _fail(message: str, code: int) -> int:
    if code == EXIT_INTERRUPTED:
        # the process may end with os._exit (derisk.console), which runs no clean-up: a generator
        # holding a scratch folder (named pipes, a spill) is not closed before it
        from derisk import scratch

        scratch.remove_own()
    click.echo(f"derisk: error: {visible(message, 2000)}", err=True)
    return code


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C that landed inside the database engine, which reports it as its own error."""
    from derisk.store.workspace import is_interrupt

    return is_interrupt(exc)


def _defaults() -> dict[str, object] | None:
    """Option defaults from derisk.toml files and DERISK_* variables (see :mod:`derisk.cli.config`)."""
    from derisk.cli import config

    files = config.config_files()
    if not files and not any(os.environ.get(name) for name in config.SHARED_ENV):
        return None
    return config.default_map(cli, files)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``derisk`` console script."""
    interrupts.install()
    try:
        defaults = _defaults()
        cli.main(
            args=argv,
            prog_name="derisk",
            standalone_mode=False,
            default_map=defaults,
            auto_envvar_prefix="DERISK",
        )
    except DeriskError as exc:
        return _fail(exc.one_line(), exc.exit_code)
    except click.exceptions.Abort:
        return _fail("interrupted; nothing was changed", EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was changed", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        hint = f" (try 'derisk {exc.ctx.command_path.partition(' ')[2]} --help')" if exc.ctx else ""
        return _fail(exc.format_message() + hint.replace("derisk  ", "derisk "), UsageError.exit_code)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line, keep the traceback for -vv
        if _interrupted(exc):
            return _fail("interrupted; nothing was changed", EXIT_INTERRUPTED)
        logging.getLogger("derisk").debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected error ({type(exc).__name__}: {exc}); please report it, with the output of -vv", 1
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return 0
