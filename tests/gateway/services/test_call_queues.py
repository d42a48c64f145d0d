"""Call queue definitions and routing order (no I/O)."""

from __future__ import annotations

import pytest

from gateway.services.call_queues import VoiceAppError, agent_order, check_attendant, check_queue


def q(method, agents=("a", "b", "c"), **kw):
    return check_queue({"id": "q1", "number": "+14255559200", "agents": list(agents), "method": method, **kw})


def test_attendant_rings_everyone_opted_in():
    assert agent_order(q("attendant", opted_out=["b"]), last_answered={}) == [["a", "c"]]


def test_serial_in_list_order_skipping_opted_out():
    assert agent_order(q("serial", opted_out=["a"]), last_answered={}) == [["b"], ["c"]]


def test_round_robin_starts_after_the_last_start():
    queue = q("round_robin")
    queue.rr_next = 2
    assert agent_order(queue, last_answered={}) == [["c"], ["a"], ["b"]]
    queue.opted_out = ["a"]
    assert agent_order(queue, last_answered={}) == [["c"], ["b"]]


def test_longest_idle_never_answered_first_then_oldest():
    order = agent_order(q("longest_idle"), last_answered={"a": 50.0, "c": 10.0})
    assert order == [["b"], ["c"], ["a"]]


def test_nobody_opted_in():
    assert agent_order(q("serial", opted_out=["a", "b", "c"]), last_answered={}) == []


@pytest.mark.parametrize("doc,where", [
    ({"id": "q 1", "number": "+14255559200", "agents": ["a"]}, "body.id"),
    ({"id": "q1", "number": "4255559200", "agents": ["a"]}, "body.number"),
    ({"id": "q1", "number": "+14255559200", "agents": []}, "body.agents"),
    ({"id": "q1", "number": "+14255559200", "agents": ["a", "a"]}, "body.agents"),
    ({"id": "q1", "number": "+14255559200", "agents": ["a"], "method": "random"}, "body.method"),
    ({"id": "q1", "number": "+14255559200", "agents": ["a"], "agent_alert_s": "5"}, "body.agent_alert_s"),
    ({"id": "q1", "number": "+14255559200", "agents": ["a"], "opted_out": ["b"]}, "body.opted_out"),
    ({"id": "q1", "number": "+14255559200", "agents": ["a"], "colour": 1}, "body.colour"),
])
def test_bad_queue_is_located(doc, where):
    with pytest.raises(VoiceAppError) as exc:
        check_queue(doc)
    assert exc.value.where == where


def test_unknown_agent_is_404():
    with pytest.raises(VoiceAppError) as exc:
        check_queue({"id": "q1", "number": "+14255559200", "agents": ["a", "zed"]}, known_users={"a"})
    assert exc.value.status == 404 and exc.value.where == "body.agents[1]"


def test_attendant_menu_checked():
    a = check_attendant({"id": "aa", "number": "+14255559300", "menu": {"1": "+14255550101"}})
    assert a.menu == {"1": "+14255550101"}
    for menu, where in [({"x": "+1425"}, "body.menu"), ({"1": "abc"}, "body.menu.1"), ({}, "body.menu")]:
        with pytest.raises(VoiceAppError) as exc:
            check_attendant({"id": "aa", "number": "+14255559300", "menu": menu})
        assert exc.value.where == where


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from gateway.config import GatewayConfig
    from gateway.server import EmbeddedGateway

    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw-queues"), GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0"))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


def test_queue_api_validates_and_opts_agents_in_and_out(gateway):
    from gateway.control_api.client import ControlApiError, ControlClient

    with ControlClient(gateway.endpoints.control_url) as api:
        api.create_user("qa", "Queue Agent", password="pw-qa-1", number="+14255550901")
        api.create_user("qb", "Queue Agent B", password="pw-qb-1", number="+14255550902")
        q = api.voiceapps.put_queue("support", "+14255559201", ["qa", "qb"], method="serial", agent_alert_s=2)
        assert q["method"] == "serial" and q["opted_out"] == []
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.put_queue("support", "+14255559201", ["qa", "nobody"])
        assert (exc.value.status, exc.value.where) == (404, "body.agents[1]")
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.put_queue("other", "+14255550901", ["qa"])  # a user's number
        assert (exc.value.status, exc.value.code) == (409, "conflict")
        assert [x["id"] for x in api.voiceapps.queues()] == ["support"]
        assert api.voiceapps.queues()[0]["agents"] == ["qa", "qb"]  # the refused change kept nothing
        assert api.voiceapps.set_agent_opt_in("support", "qb", False)["opted_out"] == ["qb"]
        with pytest.raises(ControlApiError) as exc:
            api.voiceapps.set_agent_opt_in("support", "zz", False)
        assert exc.value.where == "path.username"
        assert api.voiceapps.set_agent_opt_in("support", "qb", True)["opted_out"] == []
        assert api.voiceapps.queue_calls("support") == []
        api.voiceapps.delete_queue("support")
        api.delete_user("qa")
        api.delete_user("qb")
