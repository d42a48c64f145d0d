"""The audiocodes-mp driver: recorded Mediant ``/api/v1/status``; without an analog line simulator every
call operation is NotApplicable and says what to configure."""

from __future__ import annotations

import pytest

from harness.drivers.vendors import Endpoint, VendorApiError, audiocodes
from harness.protocols import NotApplicable
from tests.harness.drivers.recorded import Replay, reply


def session(routes):
    rp = Replay(routes)
    return audiocodes.connect(Endpoint("https://192.0.2.40", "Admin", "pw", True, 2.0, {"transport": rp.transport})), rp


def test_recorded_status_identity():
    s, rp = session({("GET", "/api/v1/status"): (200, reply("audiocodes", "status.json"))})
    ident = audiocodes.identity(s)
    assert (ident.model, ident.firmware, ident.mac, ident.serial) == ("MP114", "6.60A.367.001", "00908f4a5b6c",
                                                                      "5017834")
    assert rp.requests[0].headers["Authorization"].startswith("Basic ")


def test_no_line_simulator_means_not_applicable():
    s, _ = session({})
    for fn, args in ((audiocodes.dial, ("+14255550111",)), (audiocodes.answer, ("port1-1",)),
                     (audiocodes.hangup, ("port1-1",))):
        with pytest.raises(NotApplicable, match="line simulator"):
            fn(s, *args)
    with pytest.raises(NotApplicable, match="hook flash"):
        audiocodes.hold(s, "port1-1")


def test_reset_refused_is_a_clear_error():
    s, _ = session({("POST", "/api/v1/actions/reset"): (409, {"description": "Cannot reset while calls are up"})})
    with pytest.raises(VendorApiError, match="HTTP 409: Cannot reset while calls are up"):
        audiocodes.reboot(s)
