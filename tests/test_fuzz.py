"""A short fuzzing run of every reader in CI (the long coverage-guided runs: scripts/fuzz.py).

Each example is a real fixture of the reader's format with a few random mutations (bit flips, cut,
repeated or inserted spans, truncation) or plain random bytes; the reader must answer with a
documented exit code, never exit 1. ``DERISK_FUZZ_EXAMPLES`` raises the number of examples.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import TARGETS, run_target, seed_bytes

SCALE = float(os.environ.get("DERISK_FUZZ_SCALE", "1"))


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    if not seeds or draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=4096))
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "repeat", "insert", "truncate", "zero"]))
        span = draw(st.integers(1, min(64, len(data) - at)))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[at : at + span]
        elif op == "repeat":
            data[at:at] = data[at : at + span] * draw(st.integers(2, 50))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "truncate":
            del data[at:]
        else:
            data[at : at + span] = bytes(span)
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_reader_never_crashes(name: str, data_env: object) -> None:
    target = TARGETS[name]
    seeds = seed_bytes(name)
    assert seeds, f"{name}: no seed files"
    # The harness reaches the reader: every seed, unmutated, is read successfully.
    assert [run_target(name, seed) for seed in seeds] == [0] * len(seeds)

    @settings(
        max_examples=max(1, int(target.ci_examples * SCALE)),
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(mutated(seeds))
    def fuzz(data: bytes) -> None:
        run_target(name, data)

    fuzz()


REGRESSIONS = sorted((Path(__file__).parent / "fixtures" / "fuzz").glob("*/*"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inputs_that_once_crashed_a_reader(path: Path, data_env: object) -> None:
    """Every input a fuzzer found to crash a reader stays here, named after what it broke."""
    assert run_target(path.parent.name, path.read_bytes()) != 1
