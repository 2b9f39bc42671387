"""The settings derisk gives the Spark sessions it starts, and their override (docs/spark.md)."""

from __future__ import annotations

import pytest

from derisk.errors import ConfigError
from derisk.spark.session import CONF_VARIABLE, SETTINGS, settings


def test_the_defaults_bound_the_driver_and_name_every_memory_setting() -> None:
    got = settings({})
    assert got == SETTINGS
    assert got["spark.driver.memory"] == "1200m"
    assert got["spark.driver.maxResultSize"] == "512m"
    assert got["spark.sql.execution.arrow.maxRecordsPerBatch"] == "100000"


def test_the_variable_replaces_and_adds_settings() -> None:
    got = settings({CONF_VARIABLE: " spark.driver.memory=4g  spark.sql.shuffle.partitions=64 spark.x.y=a=b"})
    assert got["spark.driver.memory"] == "4g"
    assert got["spark.sql.shuffle.partitions"] == "64"
    assert got["spark.x.y"] == "a=b"  # the value is everything after the first '='
    assert got["spark.sql.session.timeZone"] == "UTC"  # the rest stay
    assert SETTINGS["spark.driver.memory"] == "1200m"  # the defaults themselves unchanged


@pytest.mark.parametrize("bad", ["spark.driver.memory", "driver.memory=4g", "spark.driver.memory=", "=4g"])
def test_a_malformed_pair_is_one_line_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings({CONF_VARIABLE: f"spark.sql.shuffle.partitions=8 {bad}"})
    message = str(caught.value)
    assert message.startswith(f"{CONF_VARIABLE}: {bad!r} is not a Spark setting")
    assert "\n" not in message
