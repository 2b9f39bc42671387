#!/usr/bin/env python3
"""Write derisk's data lock (``src/derisk/data/ipdata-lock.json``) from the npm registry, at release time.

For each ip-location-db package derisk installs, it asks the registry for the latest version (or
``--version``), downloads the tarball, checks it against the registry's published SHA-512 and records
version, tarball address and SHA-512. ``derisk data update`` then installs exactly these bytes.

    .venv/bin/python scripts/make_ipdata_lock.py [--version V] [--registry URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

from derisk.enrich.registry import DEFAULT_REGISTRY, LOCK_FILE, download_version
from derisk.enrich.update import PACKAGES

LOCK = Path(__file__).resolve().parent.parent / "src" / "derisk" / "data" / LOCK_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="latest")
    parser.add_argument("--registry", default=DEFAULT_REGISTRY)
    opts = parser.parse_args()
    packages = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in PACKAGES:
            tgz, version, integrity = download_version(name, opts.version, Path(tmp), opts.registry)
            packages[name] = {
                "version": version,
                "tarball": f"{DEFAULT_REGISTRY}/{name}/-/{tgz.name}",
                "integrity": integrity,
            }
            print(f"{name}@{version} {integrity[:30]}…")
    doc = {
        "schema": "derisk.ipdata-lock/1",
        "made": dt.date.today().isoformat(),
        "registry": DEFAULT_REGISTRY,
        "packages": packages,
    }
    LOCK.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {LOCK}")


if __name__ == "__main__":
    main()
