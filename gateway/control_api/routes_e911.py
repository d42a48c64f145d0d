"""Dynamic emergency calling: the tenant's location information service and the emergency calls seen.

``GET /e911/lis`` reads the LIS document (civic addresses, subnets, switches, switch ports, static addresses per
number, the default address); ``PUT /e911/lis`` replaces it as a whole after checking all of it (an error names
the field, e.g. ``body.ports[2].address``, and keeps the stored document). ``GET /e911/calls[?call_id=…]`` lists
the emergency calls the gateway saw, with the location it resolved and how (``port``, ``switch``, ``subnet``,
``static`` or ``device``). ``GET /e911/numbers`` names the emergency numbers, the test number and the lab header.
"""

from __future__ import annotations

from aiohttp import web

from gateway.control_api.base import PREFIX, ApiError, check_query, json_response, op, query_param, read_json
from gateway.services.e911 import EMERGENCY_NUMBERS, LAB_NETWORK_HEADER, TEST_NUMBER, LisError


def _service(gw):
    svc = getattr(gw, "e911", None)
    if svc is None:
        raise ApiError(409, "not_started", "the emergency calling service is not running (the gateway is not started)")
    return svc


def routes(gw) -> list[web.RouteDef]:
    async def get_lis(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response(_service(gw).lis.to_json())

    async def put_lis(request: web.Request) -> web.Response:
        check_query(request, ())
        doc = await read_json(request)
        try:
            lis = _service(gw).set_lis(doc)
        except LisError as exc:
            raise ApiError(400, "invalid_lis", str(exc), exc.where) from None
        return json_response(lis.to_json())

    async def get_calls(request: web.Request) -> web.Response:
        check_query(request, ("call_id",))
        wanted = set(request.query.getall("call_id", []))
        calls = [c for c in _service(gw).calls if not wanted or c["call_id"] in wanted]
        return json_response({"calls": calls})

    async def get_numbers(request: web.Request) -> web.Response:
        check_query(request, ())
        return json_response({"emergency": list(EMERGENCY_NUMBERS), "test": TEST_NUMBER,
                              "psap": {n: "+" + n for n in (*EMERGENCY_NUMBERS, TEST_NUMBER)},
                              "network_header": LAB_NETWORK_HEADER})

    return [web.get("/api/v1/e911/lis", get_lis), web.put("/api/v1/e911/lis", put_lis),
            web.get("/api/v1/e911/calls", get_calls), web.get("/api/v1/e911/numbers", get_numbers)]


_LIS = {"type": "object", "description": "addresses, subnets, switches, ports, static, default_address"}
OPENAPI_PATHS = {
    f"{PREFIX}/e911/lis": {
        "get": op("The tenant's location information service", schema=_LIS, errors=(409,)),
        "put": op("Replace the LIS (validated as a whole)", schema=_LIS, errors=(400, 409)),
    },
    f"{PREFIX}/e911/calls": {"get": op("Emergency calls seen, with the location resolved",
                              params=[query_param("call_id", "only the call with this A-leg Call-ID")],
                              errors=(400, 409))},
    f"{PREFIX}/e911/numbers": {"get": op("Emergency numbers, the test number and the PSAP parties", errors=(400,))},
}
