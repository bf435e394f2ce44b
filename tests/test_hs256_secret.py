"""The HS256 secret for offline pointers is at least 32 bytes: shorter ones stop the server at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.server_process import free_port, run_cli
from spsp_pull.config import from_environment
from spsp_pull.config_error import ConfigError

SHORT = "shared-with-the-wallet-31-bytes"  # 31 bytes
LONG = SHORT + "!"


def test_a_secret_of_31_bytes_is_refused_naming_the_variable() -> None:
    assert len(SHORT.encode()) == 31
    with pytest.raises(ConfigError) as caught:
        from_environment({"SPSP_JWT_SECRET": SHORT})
    assert str(caught.value) == (
        "SPSP_JWT_SECRET (the HS256 secret for offline pointers) must be at least 32 bytes (it has 31)"
    )


def test_a_secret_of_32_bytes_and_no_secret_are_accepted() -> None:
    assert from_environment({"SPSP_JWT_SECRET": LONG}).jwt_secret == LONG
    assert from_environment({}).jwt_secret is None


async def test_serve_with_a_short_secret_exits_at_start_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SPSP_JWT_SECRET": SHORT,
        "SPSP_DATA_DIR": str(tmp_path),
        "SPSP_PORT": str(free_port()),
        "SPSP_BTP_PORT": "off",
    }
    status, _, err = await run_cli("serve", env=env)
    assert status == 4  # ExitStatus.USAGE: a setting that cannot work
    assert err == (
        "spsp-pull: SPSP_JWT_SECRET (the HS256 secret for offline pointers) must be at least 32 bytes"
        " (it has 31)\n"
    )
    assert not (tmp_path / "spsp-pull.sqlite3").exists()


async def test_the_jwt_command_refuses_a_short_secret() -> None:
    status, out, err = await run_cli(
        "jwt", "--secret", SHORT, "--amount", "5", "--asset-code", "XRP", "--asset-scale", "9",
        "--interval", "P1D", "--cycles", "1",
    )  # fmt: skip
    assert (status, out) == (4, "")  # ExitStatus.USAGE
    assert err == "spsp-pull: --secret (SPSP_JWT_SECRET) must be at least 32 bytes (it has 31)\n"
