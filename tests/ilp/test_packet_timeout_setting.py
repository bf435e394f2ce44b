"""SPSP_PACKET_TIMEOUT: how long the Prepares of a pull live, a duration from 1 s to 2 min."""

from __future__ import annotations

from datetime import timedelta

import pytest

from spsp_pull.config import from_environment
from spsp_pull.config_error import ConfigError


def test_the_packet_timeout_is_a_bounded_duration() -> None:
    assert from_environment({}).packet_timeout == timedelta(seconds=30)
    for text, expected in (
        ("1", timedelta(seconds=1)),
        ("3s", timedelta(seconds=3)),
        ("2500ms", timedelta(milliseconds=2500)),
        ("2m", timedelta(minutes=2)),
    ):
        assert from_environment({"SPSP_PACKET_TIMEOUT": text}).packet_timeout == expected
    for bad in ("0", "999ms", "121s", "3m", "-1", "soon"):
        with pytest.raises(ConfigError, match="SPSP_PACKET_TIMEOUT"):
            from_environment({"SPSP_PACKET_TIMEOUT": bad})
