"""Voicemail boxes: deposit, heard, delete, settings, bad input; messages and MWI state across a gateway restart."""

from __future__ import annotations

import contextlib

import pytest

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway
from gateway.services.voicemail import DEFAULT_NO_ANSWER_S, VoicemailBoxes, VoicemailError
from gateway.store.sqlite import Store
from tests.gateway.control_api.sipphone import UdpPhone
from tests.gateway.services.test_mwi import is_notify, ok, silence_wav


@pytest.fixture
def boxes(tmp_path):
    store = Store(tmp_path / "gw.db")
    changed: list[str] = []
    b = VoicemailBoxes(store, tmp_path / "voicemail", wall=lambda: 1_900_000_000.0)
    b.listeners.append(changed.append)
    yield b, changed, store, tmp_path
    store.close()


def test_deposit_heard_delete_and_counts(boxes):
    b, changed, _, _ = boxes
    m1 = b.deposit("avery", "+12065550100", silence_wav(), 1.5)
    m2 = b.deposit("avery", "blake", silence_wav(), 2.0)
    assert b.counts("avery") == (2, 0)
    assert [m.id for m in b.messages("avery")] == [m1.id, m2.id]
    assert b.path(m1).read_bytes() == silence_wav()
    b.mark_heard("avery", m1.id)
    assert b.counts("avery") == (1, 1)
    assert b.delete("avery", m2.id) and not b.path(m2).exists()
    assert b.counts("avery") == (0, 1)
    assert not b.delete("avery", "nope")
    assert changed == ["avery"] * 4
    with pytest.raises(KeyError, match="no voicemail message"):
        b.mark_heard("avery", "nope")
    assert b.counts("nobody") == (0, 0)


def test_messages_survive_a_reopened_store_and_a_lost_file_is_dropped(boxes):
    b, _, store, tmp = boxes
    kept = b.deposit("avery", "x", silence_wav(), 1.0)
    lost = b.deposit("avery", "y", silence_wav(), 1.0)
    b.mark_heard("avery", kept.id)
    store.close()
    again = VoicemailBoxes(Store(tmp / "gw.db"), tmp / "voicemail")
    b.path(lost).unlink()
    ms = again.messages("avery")
    assert [(m.id, m.heard) for m in ms] == [(kept.id, True)]
    assert again.counts("avery") == (0, 1)
    again.store.close()


def test_counts_are_read_from_the_store_once_per_change(boxes, monkeypatch):
    """MWI asks for the counts on every REGISTER refresh: they come from memory until the box changes, and a file
    lost behind the gateway's back shows at the box's next full read."""
    b, _, store, _ = boxes
    m1 = b.deposit("avery", "x", silence_wav(), 1.0)
    reads: list[str] = []
    setting = store.setting
    monkeypatch.setattr(store, "setting", lambda key, default=None: reads.append(key) or setting(key, default))
    assert [b.counts("avery") for _ in range(3)] == [(1, 0)] * 3
    assert reads == ["voicemail.box.avery"]
    b.mark_heard("avery", m1.id)
    assert b.counts("avery") == (0, 1)
    m2 = b.deposit("avery", "y", silence_wav(), 1.0)
    assert b.counts("avery") == (1, 1)
    b.path(m2).unlink()
    assert b.counts("avery") == (1, 1)  # not read again yet
    assert [m.id for m in b.messages("avery")] == [m1.id]
    assert b.counts("avery") == (0, 1)
    with pytest.raises(VoicemailError):
        b.counts("../etc")


def test_bad_input_is_refused_and_changes_nothing(boxes):
    b, changed, _, _ = boxes
    with pytest.raises(VoicemailError) as e:
        b.deposit("../etc", "x", silence_wav(), 1.0)
    assert e.value.where == "path.username"
    assert b.no_answer_s("avery") == DEFAULT_NO_ANSWER_S
    for bad in (0.5, 500, "10", True):
        with pytest.raises(VoicemailError) as e:
            b.set_no_answer_s("avery", bad)
        assert e.value.where == "body.no_answer_s" and "from 1 to 120" in str(e.value)
    assert b.no_answer_s("avery") == DEFAULT_NO_ANSWER_S
    assert b.set_no_answer_s("avery", 7) == 7.0 and b.no_answer_s("avery") == 7.0
    assert changed == []


def test_messages_and_mwi_state_survive_a_gateway_restart(tmp_path):
    """A message left before a restart is still there after it, and a device registering afterwards gets the
    lamp on (unsolicited NOTIFY, Voice-Message 1/0)."""
    cfg = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0")
    gw = EmbeddedGateway(tmp_path / "gw", cfg)
    gw.start_in_thread()
    try:
        from gateway.control_api.client import ControlClient

        with ControlClient(gw.endpoints.control_url) as api:
            api.create_user("rs-amy", "Amy", password="pw", number="+14255557101")
        m = gw.voicemail.deposit("rs-amy", "+12065550100", silence_wav(), 1.0)
    finally:
        gw.stop_thread()

    gw2 = EmbeddedGateway(tmp_path / "gw", GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw2.start_in_thread()
    phone = UdpPhone(gw2.endpoints.udp, "rs-amy", "pw")
    try:
        from gateway.control_api.client import ControlClient

        with ControlClient(gw2.endpoints.control_url) as api:
            box = api.features.voicemail("rs-amy")
            assert [x["id"] for x in box["messages"]] == [m.id] and box["new"] == 1 and box["waiting"]
            assert api.features.message_audio("rs-amy", m.id) == silence_wav()
        assert phone.register().status == 200
        notify = phone.receive(5, is_notify)
        ok(phone, notify)
        assert b"Messages-Waiting: yes" in notify.body and b"Voice-Message: 1/0" in notify.body
    finally:
        with contextlib.suppress(Exception):
            phone.register(expires=0)
        phone.close()
        gw2.stop_thread()


def test_api_errors_name_the_part_at_fault(tmp_path):
    gw = EmbeddedGateway(tmp_path / "gw", GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    try:
        from gateway.control_api.client import ControlApiError, ControlClient

        with ControlClient(gw.endpoints.control_url) as api:
            api.create_user("api-amy", "Amy", password="pw", number="+14255557102")
            with pytest.raises(ControlApiError) as e:
                api.features.voicemail("nobody")
            assert (e.value.status, e.value.where) == (404, "path.username")
            with pytest.raises(ControlApiError) as e:
                api.features.set_voicemail("api-amy", no_answer_s=0)
            assert (e.value.status, e.value.where) == (400, "body.no_answer_s")
            with pytest.raises(ControlApiError) as e:
                api.features._request("PUT", "/users/api-amy/voicemail/settings", json={"no_answer_s": "5"})
            assert e.value.where == "body.no_answer_s"
            with pytest.raises(ControlApiError) as e:
                api.features.mark_heard("api-amy", "nope")
            assert (e.value.status, e.value.where) == (404, "path.id")
            assert api.features.voicemail("api-amy")["no_answer_s"] == DEFAULT_NO_ANSWER_S
    finally:
        gw.stop_thread()
