"""`from_environment`: every integer and duration setting lands in its `Config` field, converted, and a value
outside its range stops the start with a `ConfigError` naming the variable; the two that can be switched
off read "off"."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from spsp_pull.config import _DURATIONS, _INTEGERS, _PATHS, _TEXTS, from_environment
from spsp_pull.config_error import ConfigError

BASE = {"SPSP_BTP_PORT": "off"}


@pytest.mark.parametrize(("name", "key", "low", "high", "convert"), _INTEGERS, ids=[i[0] for i in _INTEGERS])
def test_an_integer_setting_is_read_within_its_range(
    name: str, key: str, low: int, high: int, convert: object
) -> None:
    value = max(low, 1)
    config = from_environment({**BASE, name: f" {value} "})
    assert getattr(config, key) in (value, timedelta(seconds=value))
    for bad in (str(high + 1), "-1", "ten", "1.5"):
        if bad == "-1" and low > 0:
            continue
        with pytest.raises(ConfigError, match=name):
            from_environment({**BASE, name: bad})


@pytest.mark.parametrize(("name", "key", "low", "high"), _DURATIONS, ids=[d[0] for d in _DURATIONS])
def test_a_duration_setting_takes_a_unit_and_keeps_to_its_range(
    name: str, key: str, low: timedelta, high: timedelta
) -> None:
    assert getattr(from_environment({**BASE, name: "1500ms"}), key) == timedelta(milliseconds=1500)
    assert getattr(from_environment({**BASE, name: "1"}), key) == timedelta(seconds=1)
    with pytest.raises(ConfigError, match=name):
        from_environment({**BASE, name: "3h"})


TEXTS = {
    "SPSP_BIND": "127.0.0.2",
    "SPSP_HOST": "pull.example",
    "SPSP_AUTH_TOKEN": "a-token",
    "SPSP_JWT_SECRET": "x" * 32,
    "SPSP_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
    "SPSP_SQLITE_DRIVER": "aiosqlite",
    "SPSP_BTP_BIND": "127.0.0.3",
    "SPSP_ILP_ADDRESS": "test.spsp",
    "SPSP_ILP_UPLINK": "btp+ws://up:secret@127.0.0.1:7768",
    "SPSP_ASSET_CODE": "USD",
    "SPSP_LOG_LEVEL": "debug",
    "SPSP_LOG_FORMAT": "json",
}


def test_texts_and_paths_are_taken_as_written() -> None:
    assert set(TEXTS) == {name for name, _ in _TEXTS}
    config = from_environment({**BASE, **TEXTS, **{name: f"/srv/{key}" for name, key in _PATHS}})
    assert {key: getattr(config, key) for _, key in _TEXTS} == {key: TEXTS[name] for name, key in _TEXTS}
    assert {key: getattr(config, key) for _, key in _PATHS} == {key: Path(f"/srv/{key}") for _, key in _PATHS}


def test_a_blank_variable_is_unset() -> None:
    config = from_environment({**BASE, "SPSP_HOST": "  ", "SPSP_PORT": "", "SPSP_DATA_DIR": " "})
    default = from_environment(BASE)
    assert (config.host, config.port, config.data_dir) == (default.host, default.port, default.data_dir)


@pytest.mark.parametrize("off", ["off", "OFF", "none", "0"])
def test_the_btp_endpoint_is_switched_off(off: str) -> None:
    assert from_environment({"SPSP_BTP_PORT": off}).btp_port is None


def test_the_btp_port_and_the_audit_interval_are_read_and_checked() -> None:
    assert from_environment({"SPSP_BTP_PORT": "7768"}).btp_port == 7768
    with pytest.raises(ConfigError, match="SPSP_BTP_PORT"):
        from_environment({"SPSP_BTP_PORT": "70000"})
    assert from_environment({**BASE, "SPSP_AUDIT_INTERVAL": "off"}).audit_interval is None
    assert from_environment({**BASE, "SPSP_AUDIT_INTERVAL": "60"}).audit_interval == timedelta(minutes=1)
    assert from_environment(BASE).audit_interval == timedelta(hours=1)
    with pytest.raises(ConfigError, match="SPSP_AUDIT_INTERVAL"):
        from_environment({**BASE, "SPSP_AUDIT_INTERVAL": "0"})
