"""nskit.record.Record: a dataclass's equality, hash, repr and replace, from __slots__."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from backends.base import Link
from netsetter_cni.config import NetConf, RouteConf


def test_equality_and_hash_follow_the_fields_and_the_class() -> None:
    a, b = RouteConf(IPv4Network("10.0.0.0/8")), RouteConf(IPv4Network("10.0.0.0/8"), None)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != RouteConf(IPv4Network("10.0.0.0/16"))
    assert a != (IPv4Network("10.0.0.0/8"), None)  # not a tuple of its values


def test_repr_names_every_field_but_the_uncompared() -> None:
    conf = NetConf(cni_version="1.0.0", name="demo", raw={"secret": 1})
    assert repr(conf).startswith("NetConf(cni_version='1.0.0', name='demo', bridge=")
    assert "secret" not in repr(conf) and "raw=" not in repr(conf)
    assert conf == NetConf(cni_version="1.0.0", name="demo", raw={"other": 2})  # raw is not compared


def test_replace_copies_with_changes_and_refuses_unknown_fields() -> None:
    link = Link("eth0", "veth", False, None, "02:00:00:00:00:01", index=3)
    up = link.replace(up=True)
    assert (up.up, up.index, link.up) == (True, 3, False)
    with pytest.raises(TypeError, match="no field colour"):
        link.replace(colour="red")
    with pytest.raises(AttributeError):
        link.colour = "red"  # type: ignore[attr-defined]  # __slots__: no stray attributes
