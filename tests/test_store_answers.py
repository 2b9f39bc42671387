"""The DNS-answer index (:mod:`derisk.store.answers`): the addresses with one name, indexed in Arrow,
against DuckDB's ``GROUP BY`` that the index used to run; and names given through both paths."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from derisk.store.answers import ANSWER_SCHEMA, AnswerIndex, _single_names

_SINGLE_IN_DUCKDB = (
    "SELECT address, min(ts) AS first, min(name) AS name FROM _answers GROUP BY address "
    "HAVING count(DISTINCT name) = 1"
)


def _answers(seed: int, rows: int) -> pa.Table:
    rng = random.Random(seed)
    addresses = [f"198.51.100.{i}" for i in range(12)] + ["2001:db8::1", None]
    names = ["a.example", "b.example", "c.example", None]
    return pa.table(
        {
            "client": [rng.choice(["10.0.0.1", "10.0.0.2", None]) for _ in range(rows)],
            "address": [rng.choice(addresses) for _ in range(rows)],
            "ts": [rng.choice([None, *range(1_000, 1_010)]) for _ in range(rows)],
            "name": [rng.choices(names, weights=[8, 1, 1, 1])[0] for _ in range(rows)],
        },
        schema=ANSWER_SCHEMA,
    )


@pytest.mark.parametrize("seed", range(25))
def test_single_names_as_duckdb_grouped_them(seed: int) -> None:
    answers = _answers(seed, random.Random(seed).randint(1, 60))
    single, mixed = _single_names(answers)
    con = duckdb.connect()
    con.register("_answers", answers)
    expected = con.sql(_SINGLE_IN_DUCKDB).fetchall()
    every = {
        a for (a,) in con.sql("SELECT DISTINCT address FROM _answers WHERE address IS NOT NULL").fetchall()
    }
    got = list(
        zip(single.address.to_pylist(), single.first.to_pylist(), single.name.to_pylist(), strict=True)
    )
    key = lambda row: (row[0] is None, row[0] or "")  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert sorted(mixed.to_pylist()) == sorted(every - {row[0] for row in expected})
    assert mixed.null_count == 0


def test_names_from_single_and_mixed_addresses() -> None:
    index = AnswerIndex()
    try:
        index.add(
            pa.table(
                {
                    "client": ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3"],
                    "address": ["192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.3"],
                    "ts": [100, 100, 200, 300],
                    "name": ["one.example", "two.example", "other.example", "three.example"],
                },
                schema=ANSWER_SCHEMA,
            )
        )
        clients = pa.array(["10.0.0.9", "10.0.0.2", "10.0.0.1", "10.0.0.9", "10.0.0.9", "10.0.0.9"])
        addresses = pa.array(["192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.2", "192.0.2.3", "192.0.2.9"])
        starts = pa.array([150, 250, 250, 150, 250, 500], pa.int64())
        assert index.names(clients, addresses, starts).to_pylist() == [
            "one.example",  # the one name, answered before the flow
            "two.example",  # the flow's own client's answer wins over a later one by another client
            "other.example",
            "two.example",  # the latest answer at or before the flow by anyone
            None,  # answered after the flow started
            None,  # never answered
        ]
        index.truncate(1)  # the mixed address forgotten: the tables are rebuilt from what is left
        assert index.names(clients, addresses, starts).to_pylist() == ["one.example", *[None] * 5]
        index.add(
            pa.table(
                {"client": ["10.0.0.1"], "address": ["192.0.2.2"], "ts": [100], "name": ["x.example"]},
                schema=ANSWER_SCHEMA,
            )
        )
        assert index.names(clients, addresses, starts).to_pylist()[:4] == ["one.example", *["x.example"] * 3]
    finally:
        index.close()
