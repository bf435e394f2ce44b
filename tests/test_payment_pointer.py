"""Payment pointers resolve as RFC 0026 says, except that a loopback host is reached over http."""

from __future__ import annotations

import pytest

from spsp_pull.payment_pointer import InvalidPaymentPointer, is_loopback_host, pointer_token, resolve


@pytest.mark.parametrize(
    ("pointer", "url"),
    [
        ("$wallet.example/alice", "https://wallet.example/alice"),
        ("$wallet.example", "https://wallet.example/.well-known/pay"),
        ("$wallet.example:8443/", "https://wallet.example:8443/.well-known/pay"),
        ("$localhost:6000/Xq3", "http://localhost:6000/Xq3"),
        ("$LOCALHOST:6000/Xq3", "http://LOCALHOST:6000/Xq3"),
        ("$shop.localhost/Xq3", "http://shop.localhost/Xq3"),
        ("$127.0.0.1:6000/Xq3", "http://127.0.0.1:6000/Xq3"),
        ("$127.8.9.10/Xq3", "http://127.8.9.10/Xq3"),
        ("$[::1]:6000/Xq3", "http://[::1]:6000/Xq3"),
        ("$localhost.example/Xq3", "https://localhost.example/Xq3"),
        ("$128.0.0.1/Xq3", "https://128.0.0.1/Xq3"),
        ("$[::2]/Xq3", "https://[::2]/Xq3"),
        ("http://127.0.0.1:6000/Xq3", "http://127.0.0.1:6000/Xq3"),
        ("https://localhost:6000/Xq3", "https://localhost:6000/Xq3"),
    ],
)
def test_resolve(pointer: str, url: str) -> None:
    assert resolve(pointer) == url


@pytest.mark.parametrize(
    "bad",
    ["wallet.example/alice", "$", "$user:pw@wallet.example/a", "$wallet.example/a?b=c", "$wället.example"],
)
def test_not_a_pointer(bad: str) -> None:
    with pytest.raises(InvalidPaymentPointer):
        resolve(bad)


def test_loopback_hosts() -> None:
    assert all(map(is_loopback_host, ["localhost", "localhost.", "a.b.localhost", "127.0.0.1", "::1"]))
    assert not any(map(is_loopback_host, ["localhost.example", "10.0.0.1", "0.0.0.0", "::", "example"]))


def test_the_token_of_a_pointer_or_url() -> None:
    assert pointer_token("$localhost:6000/Xq3") == "Xq3"
    assert pointer_token("http://127.0.0.1:6000/Xq3") == "Xq3"
    assert pointer_token("Xq3") == "Xq3"
