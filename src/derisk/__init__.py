"""derisk: who controls the other end of your network traffic, and which laws reach them."""

import os
import sys


def _installed_version() -> str:
    """The version of the installed distribution, from its ``derisk-VERSION.dist-info`` folder.

    The folder's name carries the version (the wheel and editable installs write it so); reading it
    costs a directory listing, where :mod:`importlib.metadata` costs 0.05 CPU s of imports, a third
    of ``derisk --version``. It is asked for anything else (an egg, a zip), and says "0+unknown" for
    a source tree that was never installed.
    """
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as found:
                names = [item.name for item in found]
        except OSError:
            continue
        for name in names:
            if name.startswith("derisk-") and name.endswith(".dist-info"):
                return name[len("derisk-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("derisk")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


__version__ = _installed_version()

__all__ = ["__version__"]
