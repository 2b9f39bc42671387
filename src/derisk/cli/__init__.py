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
from typing import Any, Final

import click

from derisk import __version__, interrupts
from derisk.errors import EXIT_CODES, EXIT_INTERRUPTED, DeriskError, UsageError
from derisk.safetext import visible

#: The command modules and the commands each registers (a test checks this against their
#: ``register``). A command's module is imported when the command is looked up, so ``derisk analyze``
#: does not import the other eleven (0.025 CPU s); listing the commands (``--help``) imports them all.
COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    "derisk.cli.watch": ("analyze", "inputs"),
    "derisk.cli.scale": ("export", "load"),
    "derisk.cli.live": ("watch",),
    "derisk.cli.collect": ("collect",),
    "derisk.cli.data": ("data",),
    "derisk.cli.demo": ("demo",),
    "derisk.cli.reduce": ("reduce",),
    "derisk.cli.know": ("entity", "evidence"),
    "derisk.cli.screen": ("screen",),
    "derisk.cli.detect": ("alerts",),
    "derisk.cli.web": ("serve", "users", "report"),
    "derisk.cli.schema": ("schema",),
}
#: Command modules, in the order of :data:`COMMANDS`.
COMMAND_MODULES: Final[tuple[str, ...]] = tuple(COMMANDS)
_MODULE_OF: Final = {name: module for module, names in COMMANDS.items() for name in names}


class _Commands(click.Group):
    """The top-level group: each command module is imported on first use of one of its commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._registered: set[str] = set()

    def register_module(self, module: str) -> None:
        if module not in self._registered:
            importlib.import_module(module).register(self)
            self._registered.add(module)

    def register_all(self) -> None:
        for module in COMMANDS:
            self.register_module(module)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.register_all()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _MODULE_OF.get(cmd_name)
        if module is not None:
            self.register_module(module)
        elif cmd_name not in self.commands:  # unknown: load all before click suggests a name
            self.register_all()
        return super().get_command(ctx, cmd_name)


_EPILOG = "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())


@click.group(
    cls=_Commands,
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
