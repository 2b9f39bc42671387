"""derisk: who controls the other end of your network traffic, and which laws reach them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("derisk")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
