"""A gateway with a registrar worker (``registrar_processes: 2``), driven by UDP phones over loopback.

Users are picked by the shard of their name, so each test knows which process answers them: shard 1 is the
worker's, shard 0 the gateway's own. What the gateway's process knows (bindings, devices, trace) is read on its
loop; what the worker did is seen on the wire (the 200's contacts) and in the worker's counters.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest

from gateway.config import GatewayConfig
from gateway.server import EmbeddedGateway
from gateway.services.model import PairState, User
from gateway.shards.dispatch import shard_of
from harness.pytest_plugin.fixtures import wait_until
from tests.gateway.control_api.sipphone import UdpPhone

PASSWORD = "worker-secret-1"
THROTTLE = 4
# Two firmware strings of the same model with different MACs: two devices of one user.
UA_1 = "PolycomVVX-VVX_450-UA/5.9.5.0614_0004f2aaaa01"
UA_2 = "PolycomVVX-VVX_450-UA/5.9.5.0614_0004f2aaaa02"


def users_of_shard(shard: int, count: int, prefix: str = "u") -> list[str]:
    names = (f"{prefix}{i:03d}" for i in range(1000))
    return [n for n in names if shard_of(n, 2) == shard][:count]


WORKER_USERS = users_of_shard(1, 6)
GATEWAY_USERS = users_of_shard(0, 3)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    config = GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", registrar_processes=2,
                           auth_throttle_failures=THROTTLE)
    gateway = EmbeddedGateway(tmp_path_factory.mktemp("gw"), config)
    for i, name in enumerate(WORKER_USERS + GATEWAY_USERS):
        gateway.directory.put_user(User(username=name, name=name.title(), number=f"+1425555{i:04d}"),
                                   password=PASSWORD)
    gateway.start_in_thread()
    yield gateway
    gateway.stop_thread()


@pytest.fixture
def phones(gw):
    made: list[UdpPhone] = []

    def make(username: str, password: str = PASSWORD, **kw) -> UdpPhone:
        phone = UdpPhone(gw.endpoints.udp, username, password, answers_notify=True, **kw)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


def contacts(resp) -> list[str]:
    return [v.split(";")[0].strip("<>") for v in resp.headers.get_all("Contact")]


def worker(gw):
    return gw.shards.workers[0]


def test_a_worker_answers_its_shard_and_the_gateway_learns_the_binding(gw, phones):
    phone = phones(WORKER_USERS[0])
    before = worker(gw).forwarded
    resp = phone.register()
    assert resp.status == 200, resp
    assert contacts(resp) == [f"sip:{WORKER_USERS[0]}@{phone.addr[0]}:{phone.addr[1]}"]
    assert worker(gw).forwarded >= before + 2  # the challenge and the REGISTER with credentials
    bound = wait_until(lambda: gw.call_soon(gw.registrar.bindings, WORKER_USERS[0], gw.core.now()),
                       timeout=5, what="the gateway's copy of the binding")
    assert [b.flow.port for b in bound] == [phone.addr[1]]
    assert bound[0].user_agent == phone.user_agent
    # The device record the worker wrote is the gateway's too, with the worker's firmware verdict.
    device = wait_until(lambda: gw.devices.get("0004f28e5a79"), timeout=5, what="the device record")
    assert device.model and device.verdict == "supported" and device.username == WORKER_USERS[0]
    # The worker's answers are in the gateway's trace.
    def answered() -> bool:
        return any(e["direction"] == "out" and e["text"].startswith("SIP/2.0 200") and phone.reg_call_id in e["text"]
                   for e in _trace(gw))
    wait_until(answered, timeout=5, what="the worker's 200 in the trace")
    status = wait_until(lambda: (s := gw.shards.status())["workers"][0]["registrar"] and s, timeout=3,
                        what="the worker's counters")
    assert status["workers"][0]["alive"] and status["registrar"]["registered"] >= 1


def test_a_refresh_reaches_the_gateways_copy_within_a_tick(gw, phones):
    from gateway.shards.worker import REFRESH_DELAY

    user = WORKER_USERS[0]
    phone = phones(user, user_agent="PolycomVVX-VVX_450-UA/5.9.5.0614_0004f2dddd01")
    assert phone.register().status == 200
    first = wait_until(lambda: [b for b in gw.call_soon(gw.registrar.bindings, user, gw.core.now())
                                if b.flow.port == phone.addr[1]], timeout=5, what="the first binding")[0]
    resp = phone.register(expires=1800)  # the same contact on the same flow: a refresh
    assert resp.status == 200
    refreshed = wait_until(lambda: [b for b in gw.call_soon(gw.registrar.bindings, user, gw.core.now())
                                    if b.flow.port == phone.addr[1] and b.cseq > first.cseq],
                           timeout=REFRESH_DELAY + 3, what="the refresh in the gateway's copy")[0]
    assert refreshed.expires_at < first.expires_at  # 1 800 s from now instead of 3 600
    assert gw.devices.get("0004f2dddd01").last_connected >= first.registered_at


def test_the_gateway_keeps_its_own_shard(gw, phones):
    phone = phones(GATEWAY_USERS[0])
    before = worker(gw).forwarded
    assert phone.register().status == 200
    assert worker(gw).forwarded == before
    assert gw.call_soon(gw.registrar.bindings, GATEWAY_USERS[0], gw.core.now())


def test_a_call_reaches_a_device_the_worker_registered(gw, phones):
    callee = phones(WORKER_USERS[1])
    caller = phones(GATEWAY_USERS[1])
    assert callee.register().status == 200 and caller.register().status == 200
    number = gw.directory.user(WORKER_USERS[1]).number
    wait_until(lambda: gw.call_soon(gw.registrar.bindings, WORKER_USERS[1], gw.core.now()),
               timeout=5, what="the callee's binding at the gateway")
    call_id, _ = caller.invite(number)
    invite = callee.receive(5.0, lambda m: getattr(m, "method", None) == "INVITE")
    callee.answer(invite, 486)
    resp = caller.receive(5.0, lambda m: getattr(m, "status", 0) >= 200 and m.call_id == call_id)
    assert resp.status == 486


def test_all_contacts_of_a_user_and_a_sign_out_made_at_the_gateway(gw, phones):
    user = WORKER_USERS[2]
    one, two = phones(user, user_agent=UA_1), phones(user, user_agent=UA_2)
    assert one.register().status == 200
    resp = two.register()
    assert resp.status == 200
    assert len(contacts(resp)) == 2  # RFC 3261 §10.3 step 8: every current binding, the worker holds both
    wait_until(lambda: len(gw.call_soon(gw.registrar.bindings, user, gw.core.now())) == 2, timeout=5,
               what="both bindings")
    gw.call_soon(gw.registrar.drop_device, "0004f2aaaa01", gw.core.now())
    resp = two.register()
    assert resp.status == 200
    assert contacts(resp) == [f"sip:{user}@{two.addr[0]}:{two.addr[1]}"]  # the worker dropped the first device


def test_a_device_offboarded_at_the_gateway_is_refused_by_the_worker(gw, phones):
    user = WORKER_USERS[3]
    phone = phones(user, user_agent="PolycomVVX-VVX_450-UA/5.9.5.0614_0004f2bbbb01")
    assert phone.register().status == 200
    device = wait_until(lambda: gw.devices.get("0004f2bbbb01"), timeout=5, what="the device record")
    gw.call_soon(gw.devices.put, replace(device, pair_state=PairState.OFFBOARDED))
    resp = phone.register()
    assert resp.status == 403 and "SGW-DEVICE-OFFBOARDED" in resp.headers.get("Warning")


def test_a_user_added_at_the_gateway_registers_through_the_worker_at_once(gw, phones):
    name = next(n for n in users_of_shard(1, 50, prefix="late") if gw.directory.user(n) is None)
    gw.call_soon(gw.directory.put_user, User(username=name, name="Late", number="+14255559999"), PASSWORD)
    before = worker(gw).forwarded
    assert phones(name).register().status == 200
    assert worker(gw).forwarded > before


def test_failed_authentications_count_across_processes(gw, phones):
    # Wrong passwords for a user of each shard, from one source address: the throttle sees them all.
    for i in range(THROTTLE):
        user = WORKER_USERS[4] if i % 2 == 0 else GATEWAY_USERS[2]
        assert phones(user, password="wrong").register().status == 403
    time.sleep(0.3)  # the failures seen by each process reach the other
    for user in (WORKER_USERS[4], GATEWAY_USERS[2]):
        resp = phones(user).register()
        assert resp.status == 503, f"{user}: {resp.status}"
        assert "SGW-AUTH-THROTTLED" in resp.headers.get("Warning")
    gw.call_soon(gw.registrar.clear)  # forgets the failures here and in the worker
    time.sleep(0.3)
    assert phones(WORKER_USERS[4]).register().status == 200


def test_the_gateway_clock_reaches_the_worker(gw, phones):
    gw.call_soon(gw.clock.advance, 86_400.0)
    try:
        user = WORKER_USERS[5]
        phone = phones(user, user_agent="PolycomVVX-VVX_450-UA/5.9.5.0614_0004f2cccc01")
        assert phone.register().status == 200
        bound = wait_until(lambda: gw.call_soon(gw.registrar.bindings, user, gw.core.now()), timeout=5, what="binding")
        assert bound[0].registered_at > time.time() + 86_000
    finally:
        gw.call_soon(gw.clock.reset)


def test_the_gateway_takes_back_the_shard_of_a_worker_that_died(gw, phones):
    os.kill(worker(gw).pid, signal.SIGKILL)
    wait_until(lambda: not worker(gw).alive, timeout=5, what="the worker's channel closing")
    phone = phones(WORKER_USERS[0])
    before = worker(gw).forwarded
    assert phone.register().status == 200
    assert worker(gw).forwarded == before
    assert gw.call_soon(gw.registrar.bindings, WORKER_USERS[0], gw.core.now())


def _trace(gw) -> list[dict]:
    return [{"direction": e.direction, "text": e.data.decode("latin-1")} for e in gw.trace.entries()]


def test_a_worker_that_cannot_start_fails_the_gateways_start_with_the_reason(tmp_path, monkeypatch):
    import socket
    import sys

    from gateway.shards.pool import ShardError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the workers exit at once
    gateway = EmbeddedGateway(tmp_path / "gw", GatewayConfig(sip=f"127.0.0.1:{port}", tls="127.0.0.1:0",
                                                              http="127.0.0.1:0", registrar_processes=3))
    with pytest.raises(ShardError, match=r"registrar workers \[1, 2\] exited while starting"):
        gateway.start_in_thread()
    # What the start had opened is closed again: the SIP port is free at once.
    assert gateway.core.transports.listeners == []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))


def test_a_worker_that_stops_answering_is_killed_and_its_shard_taken_back(tmp_path, monkeypatch):
    from gateway.shards import pool

    monkeypatch.setattr(pool, "SILENCE_S", 1.5)
    gateway = EmbeddedGateway(tmp_path / "gw", GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0",
                                                              registrar_processes=2))
    gateway.directory.put_user(User(username=WORKER_USERS[0], name="W"), password=PASSWORD)
    gateway.start_in_thread()
    try:
        w = gateway.shards.workers[0]
        os.kill(w.pid, signal.SIGSTOP)  # alive, but reads nothing and says nothing
        wait_until(lambda: not w.alive, timeout=10, what="the silent worker given up")
        assert w.process.wait(5) == -signal.SIGKILL
        phone = UdpPhone(gateway.endpoints.udp, WORKER_USERS[0], PASSWORD, answers_notify=True)
        try:
            assert phone.register().status == 200  # answered by the gateway's process
        finally:
            phone.close()
        assert gateway.call_soon(gateway.registrar.bindings, WORKER_USERS[0], gateway.core.now())
    finally:
        gateway.stop_thread()
