"""Which Accept headers get the pointer's page: only those that rank HTML above every JSON type."""

from __future__ import annotations

import pytest

from spsp_pull.web.negotiation import prefers_html

CHROMIUM = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    "accept", [CHROMIUM, FIREFOX, "text/html", "TEXT/HTML", "text/html;q=0.5, */*;q=0.4"]
)
def test_browsers_get_the_page(accept: str) -> None:
    assert prefers_html(accept)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/spsp4+json, application/spsp+json",
        "application/spsp4+json",
        "application/json",
        "application/json, text/html",  # a tie: SPSP as before
        "text/html;q=0.5, application/json",
        "text/html;q=0.5, */*",
        "text/html;q=0",
        "text/html;q=2",  # malformed: the range is ignored
        "text/html;q=0.1234",
        "text/*;q=0.5, application/*",
        "texthtml",
    ],
)
def test_everything_else_gets_spsp(accept: str | None) -> None:
    assert not prefers_html(accept)


def test_the_most_specific_range_decides() -> None:
    assert prefers_html("text/html;q=0.4, */*;q=0.3")
    assert not prefers_html("text/html;q=0.4, */*;q=0.3, application/json;q=0.9")
    assert not prefers_html("text/html;q=0.4, application/*;q=0.5")
    every_json_lower = "application/spsp4+json;q=0.1, application/spsp+json;q=0, application/json;q=0"
    assert prefers_html(f"text/html;q=0.4, application/*;q=0.5, {every_json_lower}")
