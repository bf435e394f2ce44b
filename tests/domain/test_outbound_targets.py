"""Which URLs the server may send webhooks and payout notifications to, read as browsers read them.

Validation only: nothing here opens a connection."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from spsp_pull.domain.details_input import parse_webhook
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.outbound_targets import (
    PUBLIC_ONLY,
    TargetPolicy,
    TargetRefused,
    destination_of,
    is_public,
    parse_networks,
    read_target_url,
    redacted,
)

LOOPBACK_ALLOWED = TargetPolicy(parse_networks(["127.0.0.0/8", "::1/128"]))

REFUSED_SPELLINGS = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://0x7f.0.0.1/hook",
    "http://127.0.0.1./hook",
    "http://%31%32%37.0.0.1/hook",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/hook",  # fullwidth digits
    "http://0.0.0.0/hook",
    "http://0/hook",
    "http://[::1]/hook",
    "http://[0:0:0:0:0:0:0:1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::127.0.0.1]/hook",  # IPv4-compatible (deprecated)
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[64:ff9b:1::1]/hook",  # NAT64 local use
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://admin.localhost:6000/hook",
    "https://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
    "https://100.64.0.1/hook",  # shared address space
    "https://224.0.0.1/hook",  # multicast
    "https://239.255.255.250/hook",
    "https://255.255.255.255/hook",
    "https://240.0.0.1/hook",  # reserved
    "https://198.18.0.1/hook",  # benchmarking
    "https://192.0.2.1/hook",  # documentation
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://[fec0::1]/hook",  # site-local
    "https://[ff02::1]/hook",
    "https://[2001:db8::1]/hook",
    "https://[::ffff:10.1.2.3]/hook",
    "https://[::ffff:169.254.169.254]/hook",
]


@pytest.mark.parametrize("url", REFUSED_SPELLINGS)
def test_internal_targets_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(TargetRefused):
        PUBLIC_ONLY.check_url(read_target_url(url))
    with pytest.raises(InputError) as refused:
        parse_webhook(url, PUBLIC_ONLY)
    assert (refused.value.code, refused.value.field) == ("webhook-target-refused", "webhook")


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/hooks/pull",
        "https://93.184.215.14/hook",
        "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/hook",
        "https://[::ffff:93.184.215.14]/hook",
        "https://[2002:5db8:d70e::1]/hook",  # 6to4 of a public address
        "https://localhost.example/hook",  # only *.localhost is loopback by name
        "https://user:pw@shop.example/hook?token=1",
    ],
)
def test_public_targets_and_names_pass(url: str) -> None:
    assert parse_webhook(url, PUBLIC_ONLY) == url  # kept as given


def test_spellings_read_as_a_browser_reads_them() -> None:
    for url in ("http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/"):
        assert read_target_url(url).address == ip_address("127.0.0.1")
    mapped = read_target_url("http://[::ffff:127.0.0.1]:8080/x")
    assert mapped.address == ip_address("::ffff:7f00:1") and mapped.href == "http://[::ffff:7f00:1]:8080/x"
    assert read_target_url("https://Shop.Example/x").address is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example/",
        "https:///hook",
        "http://[::1/hook",
        "http://1.2.3.999/",
        "mailto:a@b.example",
        "",
    ],
)
def test_what_is_not_an_http_url_is_invalid_not_refused(url: str) -> None:
    with pytest.raises(InputError) as invalid:
        parse_webhook(url, PUBLIC_ONLY)
    assert invalid.value.code == "invalid-webhook"


def test_allow_nets_let_local_receivers_in() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://127.1:8080/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:8080/hook",
        "http://hooks.localhost/hook",
    ):
        assert parse_webhook(url, LOOPBACK_ALLOWED) == url
    for url in ("http://10.0.0.1/hook", "http://169.254.169.254/", "http://[fe80::1]/"):
        with pytest.raises(InputError):
            parse_webhook(url, LOOPBACK_ALLOWED)
    only_v6 = TargetPolicy(parse_networks(["::1/128"]))
    assert parse_webhook("http://localhost/hook", only_v6) == "http://localhost/hook"
    with pytest.raises(InputError):
        parse_webhook("http://127.0.0.1/hook", only_v6)


def test_networks_parse_from_the_setting() -> None:
    assert parse_networks(["127.0.0.0/8", " ::1/128", ""]) == LOOPBACK_ALLOWED.allow_nets
    assert [str(n) for n in parse_networks(["10.1.2.3/8", "::1"])] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        parse_networks(["10.0.0.0/33"])


def test_public_means_global_unicast() -> None:
    assert is_public(ip_address("8.8.8.8")) and is_public(ip_address("2001:4860:4860::8888"))
    assert not any(
        is_public(ip_address(a))
        for a in ("127.0.0.1", "10.0.0.1", "0.0.0.0", "::", "::1", "ff0e::1", "224.0.1.1")
    )


def test_redacted_urls_lose_credentials_and_query() -> None:
    assert (
        redacted("https://user:s3cret@hooks.example:8443/p/a?token=abc#f")
        == "https://***@hooks.example:8443/p/a?***"
    )
    assert redacted("https://hooks.example/p") == "https://hooks.example/p"
    assert destination_of("HTTPS://Hooks.Example:443/a?b") == "https://hooks.example"
    assert destination_of("http://127.0.0.1:8080/a") == "http://127.0.0.1:8080"


def test_the_allow_list_and_the_retired_secret_in_the_environment() -> None:
    from spsp_pull.config import from_environment
    from spsp_pull.config_error import ConfigError

    assert from_environment({}).outbound_targets == PUBLIC_ONLY
    config = from_environment({"SPSP_WEBHOOK_ALLOW_NETS": "127.0.0.0/8, ::1/128"})
    assert config.outbound_targets == LOOPBACK_ALLOWED
    with pytest.raises(ConfigError, match="SPSP_WEBHOOK_ALLOW_NETS: 'localhost' is not a network"):
        from_environment({"SPSP_WEBHOOK_ALLOW_NETS": "localhost"})
    with pytest.raises(ConfigError, match="SPSP_WEBHOOK_SECRET is gone"):
        from_environment({"SPSP_WEBHOOK_SECRET": "shared"})
