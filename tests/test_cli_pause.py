"""`spsp-pull pause <token> --until …`: a time with an offset, or a duration from now; anything else is a
usage error before any request is made. (The commands against a real server:
tests/ilp/test_pause_end_to_end.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from harness.server_process import run_cli
from spsp_pull.cli import resume_time
from spsp_pull.cli_errors import ExitStatus, UsageError
from tests.domain.helpers import at

NOW = at(2026, 12, 3, 10)


def test_until_is_a_time_or_a_duration_from_now() -> None:
    assert resume_time("2026-12-24T00:00:00Z", NOW) == at(2026, 12, 24)
    assert resume_time("2026-12-24T01:00:00+01:00", NOW) == at(2026, 12, 24)
    assert resume_time("P7D", NOW) == NOW + timedelta(days=7)
    assert resume_time("P1M", NOW) == at(2027, 1, 3, 10)


@pytest.mark.parametrize("text", ["P0D", "PT-1S", "tomorrow", "2026-12-24T00:00:00"])
def test_other_spellings_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        resume_time(text, NOW)


async def test_the_command_refuses_a_bad_until_without_asking_the_server() -> None:
    status, out, err = await run_cli(
        "pause", "some-token", "--until", "soon", "--server", "http://127.0.0.1:9"
    )
    assert (status, out) == (ExitStatus.USAGE, "")
    assert "--until" in err
