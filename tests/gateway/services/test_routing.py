"""Routing of calls to devices: a TCP/TLS binding whose connection closed is reached at its Contact."""

from __future__ import annotations

import pytest

from gateway.services.directory import Directory
from gateway.services.model import Flow, User
from gateway.services.registrar import Binding, DeviceRegistry, Registrar
from gateway.services.routing import Router, contact_flow
from gateway.sip import NameAddr
from gateway.sip.auth import DigestServer
from gateway.store.sqlite import Store


def binding(contact: str, flow: Flow) -> Binding:
    na = NameAddr.parse(contact)
    return Binding("bob", na, str(na.uri), 1e9, "c", 1, flow, None, "dev", 0.0)


@pytest.mark.parametrize(("contact", "flow", "expected"), [
    ("<sip:bob@127.0.0.1:5070;transport=tcp>", Flow("TCP", "127.0.0.1", 40001, 7), Flow("TCP", "127.0.0.1", 5070)),
    ("<sip:bob@127.0.0.1;transport=TLS>", Flow("TLS", "127.0.0.1", 40002, 8), Flow("TLS", "127.0.0.1", 5061)),
    ("<sips:bob@127.0.0.1:5071>", Flow("TCP", "127.0.0.1", 40003, 9), Flow("TLS", "127.0.0.1", 5071)),
    # No transport parameter: the transport the device registered over.
    ("<sip:bob@127.0.0.1:5072>", Flow("TCP", "127.0.0.1", 40004, 1), Flow("TCP", "127.0.0.1", 5072)),
    ("<sip:bob@127.0.0.1:5073;transport=sctp>", Flow("TCP", "127.0.0.1", 40005, 1), None),
])
def test_contact_flow(contact, flow, expected):
    assert contact_flow(binding(contact, flow)) == expected


def test_router_uses_the_contact_when_the_registration_flow_is_gone(tmp_path):
    store = Store(tmp_path / "gw.db")
    try:
        directory = Directory(store, "sipgw.lab")
        directory.put_user(User("bob", "Bob", "+14255550102"), password="pw")
        registrar = Registrar(directory, DigestServer("sipgw.lab", b"k" * 32), DeviceRegistry(store))
        tcp = Flow("TCP", "127.0.0.1", 40001, 7)
        registrar._bindings["bob"] = [binding("<sip:bob@127.0.0.1:5070;transport=tcp>", tcp)]
        live: set[Flow] = {tcp}
        router = Router(directory, registrar, media=None, domain="sipgw.lab", flow_live=lambda f: f in live)
        assert router.route("+14255550102", 0.0).targets[0].flow == tcp
        live.clear()  # the device's connection closed
        assert router.route("+14255550102", 0.0).targets[0].flow == Flow("TCP", "127.0.0.1", 5070)
    finally:
        store.close()
