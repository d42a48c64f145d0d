"""The worker compares the conference bridge's real connections with the wanted ones (sipua.agent)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pjsua2 as pj

from sipua import agent as agent_mod
from sipua.agent import BRIDGE_SETTLE_S, UserAgent
from sipua.protocol import WorkerConfig


def _agent(tmp_path) -> UserAgent:
    config = WorkerConfig(name="audit", user_agent="sipgw-lab-test", log_path=str(tmp_path / "audit.log"))
    return UserAgent(config, lambda *a: None, lambda msg: None)


def test_a_lost_connection_is_found_logged_and_requested_again(tmp_path, monkeypatch, caplog):
    ua = _agent(tmp_path)
    rewired = []
    monkeypatch.setattr(ua, "_rewire", lambda forget=None: rewired.append(set(ua._edges)))
    ports = {5: SimpleNamespace(name="tonegen", listeners=[7]), 9: SimpleNamespace(name="call", listeners=[11])}
    monkeypatch.setattr(agent_mod.pj.AudioMedia, "getPortInfoFromId", staticmethod(lambda slot: ports[slot]))
    ua._edges = {(5, 7), (5, 8), (9, 11), (9, 12)}
    ua._edge_since = {(5, 7): 0.0, (5, 8): 0.0, (9, 11): 0.0, (9, 12): 100.0}  # (9, 12) was just requested
    with caplog.at_level(logging.WARNING, logger="sipua.worker"):
        ua._audit_bridge(100.0 + BRIDGE_SETTLE_S / 2)
    assert ua.bridge_repairs == 1
    assert rewired == [{(5, 7), (9, 11), (9, 12)}]  # the lost one is forgotten, so the rewire makes it again
    assert "connection 5 (tonegen) -> 8 is missing" in caplog.text


def test_nothing_is_touched_when_the_bridge_has_every_connection(tmp_path, monkeypatch):
    ua = _agent(tmp_path)
    monkeypatch.setattr(ua, "_rewire", lambda forget=None: (_ for _ in ()).throw(AssertionError("rewired")))
    monkeypatch.setattr(agent_mod.pj.AudioMedia, "getPortInfoFromId",
                        staticmethod(lambda slot: SimpleNamespace(name="p", listeners=[7, 8])))
    ua._edges = {(5, 7), (5, 8)}
    ua._edge_since = dict.fromkeys(ua._edges, 0.0)
    ua._audit_bridge(10.0)
    assert ua.bridge_repairs == 0


def test_a_vanished_source_port_is_reported(tmp_path, monkeypatch, caplog):
    ua = _agent(tmp_path)

    def gone(slot):
        err = pj.Error()
        err.reason, err.title = "Not found", "getPortInfoFromId"
        raise err

    monkeypatch.setattr(agent_mod.pj.AudioMedia, "getPortInfoFromId", staticmethod(gone))
    ua._edges = {(5, 7)}
    ua._edge_since = {(5, 7): 0.0}
    with caplog.at_level(logging.WARNING, logger="sipua.worker"):
        ua._audit_bridge(10.0)
    assert "port 5 is gone" in caplog.text
