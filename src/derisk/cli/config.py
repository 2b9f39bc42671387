"""Option defaults from ``derisk.toml`` files and ``DERISK_*`` environment variables.

Where an option's value comes from, first match wins:

1. the command line;
2. an environment variable: ``DERISK_WORKSPACE``, ``DERISK_LANG`` and ``DERISK_DATA_DIR`` for every
   command that has the option, or ``DERISK_<COMMAND>_<OPTION>`` for one command
   (``DERISK_ANALYZE_SITE=site.yaml``, ``DERISK_ENTITY_SHOW_JSON=-``);
3. ``derisk.toml`` in the current directory (the site's own settings);
4. the user's file, ``$XDG_CONFIG_HOME/derisk/derisk.toml`` (``~/.config/derisk/derisk.toml``);
5. the option's built-in default.

``$DERISK_CONFIG`` names one file to read instead of 3 and 4 (an empty value reads none).

A file holds top-level keys, which apply to every command that has an option of that name, and
tables named after commands, which apply to that command only (``[analyze]``, ``[entity.show]``)::

    workspace = "liege-ws"      # every command with --workspace
    lang = "fr"

    [analyze]
    site = "liege.yaml"

Keys are the option's long name without its dashes (``data-dir`` or ``data_dir``). A relative path is
relative to the file's folder. An unknown key, a table for a command that does not exist, or a value
of the wrong type is refused in one line naming the file (exit code 4), before the command runs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from derisk.errors import ConfigError

#: The file name looked for in the current directory and in the user's configuration folder.
FILE_NAME = "derisk.toml"
#: Files larger than this are not configuration files.
MAX_BYTES = 1_000_000


def config_files(env: dict[str, str] | None = None, cwd: Path | None = None) -> list[Path]:
    """The files to read, lowest precedence first."""
    env = dict(os.environ) if env is None else env
    if "DERISK_CONFIG" in env:
        named = env["DERISK_CONFIG"].strip()
        if not named:
            return []
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError("no such configuration file (named by $DERISK_CONFIG)", source=named)
        return [path]
    home = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    found = [Path(home) / "derisk" / FILE_NAME, (cwd or Path.cwd()) / FILE_NAME]
    return [p for p in found if p.is_file()]


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", source=str(path)) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"larger than {MAX_BYTES:,} bytes; not a configuration file", source=str(path))
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 (byte {exc.start})", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(path)) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError("nested too deeply; not a configuration file", source=str(path)) from None


def _options(command: click.Command) -> dict[str, click.Option]:
    """An option's accepted keys (long names without dashes, dashes or underscores) → the option."""
    keys: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                keys[opt[2:]] = param
                keys[opt[2:].replace("-", "_")] = param
        keys[param.name] = param
    return keys


def _commands(group: click.Group, ctx: click.Context) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is not None:
            yield name, cmd


def _value(option: click.Option, value: Any, folder: Path, where: str) -> Any:
    if isinstance(value, dict | list) and not option.multiple:
        raise ConfigError(f"{where}: expected a single value, got a {type(value).__name__}")
    values = value if isinstance(value, list) else [value]
    out = []
    for item in values:
        if isinstance(item, dict):
            raise ConfigError(f"{where}: expected a value, got a table")
        if isinstance(option.type, click.Path):
            if not isinstance(item, str):
                raise ConfigError(f"{where}: expected a path (a string), got {type(item).__name__}")
            item = str(folder / Path(item).expanduser())
        try:
            out.append(option.type.convert(item, option, None))
        except click.BadParameter as exc:
            raise ConfigError(f"{where}: {exc.format_message()}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: wrong type of value ({exc})") from None
    return out if isinstance(value, list) else out[0]


def _apply(
    group: click.Group, ctx: click.Context, doc: dict[str, Any], into: dict[str, Any], path: Path, table: str
) -> None:
    commands = dict(_commands(group, ctx))
    for key, value in doc.items():
        name = f"{table}.{key}" if table else key
        where = (
            f"{path}: [{name}]"
            if isinstance(value, dict)
            else f"{path}: " + (f"[{table}] {key}" if table else key)
        )
        if isinstance(value, dict):
            cmd = commands.get(key)
            if cmd is None:
                raise ConfigError(f"{where}: no such command")
            target = into.setdefault(key, {})
            if isinstance(cmd, click.Group):
                _apply(cmd, click.Context(cmd, parent=ctx), value, target, path, name)
            else:
                options = _options(cmd)
                for opt_key, opt_value in value.items():
                    option = options.get(opt_key)
                    if option is None or option.name is None:
                        raise ConfigError(
                            f"{path}: [{name}] {opt_key}: no such option of 'derisk {name.replace('.', ' ')}'"
                        )
                    target[option.name] = _value(option, opt_value, path.parent, f"{where} {opt_key}")
            continue
        if table:
            raise ConfigError(f"{where}: expected a table of options for a command")
        applied = _spread(group, ctx, key, value, into, path)
        if not applied:
            raise ConfigError(f"{where}: no command has an option of this name")


def _spread(
    group: click.Group, ctx: click.Context, key: str, value: Any, into: dict[str, Any], path: Path
) -> int:
    """A top-level key: the default for every command that has the option. Returns how many have it."""
    applied = 0
    for name, cmd in _commands(group, ctx):
        if isinstance(cmd, click.Group):
            sub = into.setdefault(name, {})
            applied += _spread(cmd, click.Context(cmd, parent=ctx), key, value, sub, path)
            continue
        option = _options(cmd).get(key)
        if option is not None and option.name is not None:
            # a command's own table wins over a top-level key of the same file
            into.setdefault(name, {}).setdefault(
                option.name, _value(option, value, path.parent, f"{path}: {key}")
            )
            applied += 1
    return applied


def _merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


#: Environment variables that set an option for every command that has it.
SHARED_ENV = {"DERISK_WORKSPACE": "workspace", "DERISK_LANG": "lang"}


def default_map(group: click.Group, files: list[Path], env: dict[str, str] | None = None) -> dict[str, Any]:
    """click's ``default_map`` for ``group`` from ``files`` (lowest precedence first), then the shared
    environment variables (:data:`SHARED_ENV`) above them."""
    env = dict(os.environ) if env is None else env
    merged: dict[str, Any] = {}
    ctx = click.Context(group)
    for path in files:
        layer: dict[str, Any] = {}
        doc = _read(path)
        tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
        scalars = {k: v for k, v in doc.items() if not isinstance(v, dict)}
        _apply(group, ctx, tables, layer, path, "")
        _apply(group, ctx, scalars, layer, path, "")
        merged = _merge(merged, layer)
    shared: dict[str, Any] = {}
    for name, key in SHARED_ENV.items():
        if env.get(name):
            _spread(group, ctx, key, env[name], shared, Path(f"${name}"))
    return _merge(merged, shared)
