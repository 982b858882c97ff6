"""The public forms' per-address limit counts an IPv6 sender by its /64 (a home or a phone
has a whole /64: stepping address by address must not get round the limit)."""

from __future__ import annotations

import pytest

from triage.web.public.referral import _network_of


@pytest.mark.parametrize(
    ("host", "sender"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("testclient", "testclient"),
    ],
)
def test_a_sender_is_an_ipv4_address_or_an_ipv6_64(host: str, sender: str) -> None:
    assert _network_of(host) == sender
