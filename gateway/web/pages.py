"""Handlers and jinja2 templates of the sign-in page and the admin devices page (see the package docstring)."""

from __future__ import annotations

import datetime as dt

import jinja2
from aiohttp import web

from gateway.services.lifecycle import offboarding_date
from gateway.services.model import PairState
from gateway.services.signin import SignInError, hardware_id, split_key

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

STATE_LABELS = {PairState.ONBOARDING: "Onboarding", PairState.UNPAIRED: "Signed out",
                PairState.PAIRED: "Signed in", PairState.OFFBOARDED: "Offboarded"}

_STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}.error{color:#a00;font-weight:bold}
.ok{color:#060;font-weight:bold}form.inline{display:inline}label{display:block;margin:.5em 0}"""

_SIGNIN = _ENV.from_string("""<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>Sign in a SIP device</title>
<style>{{ style }}</style></head><body>
<h1>Sign in a SIP device</h1>
{% if message %}<p id="message" class="{{ 'ok' if ok else 'error' }}">{{ message }}</p>{% endif %}
{% if not ok %}
<p>Enter your account and the pairing code your device shows.</p>
<form method="post" action="{{ action }}" id="signin">
  <label>User name <input name="username" id="username" value="{{ username }}" autocomplete="username"></label>
  <label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
  <label>Pairing code <input name="code" id="code" value="{{ code }}" maxlength="11"></label>
  <button type="submit" id="submit">Sign in</button>
</form>
{% endif %}
</body></html>
""")

_ADMIN = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SIP devices</title><style>{{ style }}</style></head><body>
<h1>SIP devices</h1>
{% if message %}<p id="message" class="{{ 'ok' if ok else 'error' }}">{{ message }}</p>{% endif %}
<table id="devices">
<thead><tr><th>Device</th><th>Hardware ID</th><th>Model</th><th>Firmware</th><th>Verdict</th><th>State</th><th>User</th>
<th>Last seen</th><th>Offboarding date</th><th>Actions</th></tr></thead>
<tbody>
{% for d in devices %}
<tr data-key="{{ d.key }}" data-mac="{{ d.mac }}" data-port="{{ d.port }}" data-state="{{ d.state }}">
<td>{{ d.key }}</td><td class="hardware-id">{{ d.hardware_id }}</td><td>{{ d.vendor }} {{ d.model }}</td>
<td>{{ d.firmware }}</td>
<td class="verdict" title="{{ d.verdict_reason }}">{{ d.verdict }}</td><td class="state">{{ d.state_label }}</td>
<td class="user">{{ d.user }}</td><td class="last-seen">{{ d.last_seen }}</td>
<td class="offboarding">{{ d.offboarding }}</td>
<td>{% if d.state == 'paired' %}<form class="inline" method="post" action="/admin/devices/{{ d.key }}/signout">
<button type="submit" class="signout">Sign out</button></form>{% endif %}
{% if d.state != 'offboarded' %}<form class="inline" method="post" action="/admin/devices/{{ d.key }}/restart">
<button type="submit" class="restart">Restart</button></form>{% endif %}</td>
</tr>
{% else %}<tr><td colspan="10">No SIP devices yet.</td></tr>{% endfor %}
</tbody></table>
</body></html>
""")


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def routes(prov) -> list[web.RouteDef]:
    """Routes of the pages; ``prov`` is the :class:`gateway.provisioning.server.ProvisioningServer`."""
    gw = prov.gw

    def signin_page(request: web.Request, *, message: str = "", ok: bool = False, username: str = "",
                    code: str = "", status: int = 200) -> web.Response:
        lang = request.match_info.get("lang", "en")
        action = f"/lang_{lang}/signin" if "lang" in request.match_info else "/signin"
        return _html(_SIGNIN.render(style=_STYLE, lang=lang, message=message, ok=ok, username=username, code=code,
                                    action=action), status)

    async def get_signin(request: web.Request) -> web.Response:
        return signin_page(request, code=request.query.get("code", ""))

    async def post_signin(request: web.Request) -> web.Response:
        form = await request.post()
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        code = str(form.get("code", "")).strip()
        if not username or not code:
            missing = "user name" if not username else "pairing code"
            return signin_page(request, message=f"Enter your {missing}.", username=username, code=code, status=400)
        try:
            device = prov.signin.complete_pairing(username, password, code, peer=request.remote or "?")
        except SignInError as exc:
            return signin_page(request, message=exc.message, username=username, code=code, status=exc.status)
        user = gw.directory.user(username)
        what = " ".join(x for x in (device.vendor, device.model) if x) or device.key
        return signin_page(request, ok=True, message=f"Signed in. {what} is now signed in as {user.name} "
                                                     f"({user.number}).")

    def admin_page(message: str = "", ok: bool = True, status: int = 200) -> web.Response:
        rows = []
        for d in gw.devices.all():
            mac, port = split_key(d.key)
            rows.append({"key": d.key, "mac": d.mac or "", "port": f"{port:03d}" if port else "",
                         "hardware_id": hardware_id(d.key) if d.mac and d.mac == mac else "",
                         "vendor": d.vendor or "", "model": d.model or "", "firmware": d.firmware or "",
                         "verdict": d.verdict or "", "verdict_reason": d.verdict_reason or "",
                         "state": d.pair_state.value, "state_label": STATE_LABELS[d.pair_state],
                         "user": d.username or "", "last_seen": _iso(d.last_connected),
                         "offboarding": _iso(offboarding_date(d))})
        return _html(_ADMIN.render(style=_STYLE, devices=rows, message=message, ok=ok), status)

    async def get_admin(request: web.Request) -> web.Response:
        return admin_page(request.query.get("message", ""), request.query.get("ok", "1") == "1")

    async def post_signout(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            prov.signin.sign_out(key, by="admin")
        except SignInError as exc:
            return admin_page(exc.message, ok=False, status=exc.status)
        raise web.HTTPSeeOther(f"/admin/devices?message=Signed+out+{key}")

    async def post_restart(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if gw.devices.get(key) is None:
            return admin_page(f"No device {key}.", ok=False, status=404)
        prov.request_restart(key)
        raise web.HTTPSeeOther(f"/admin/devices?message=Restart+requested+for+{key}")

    return [
        web.get("/signin", get_signin),
        web.post("/signin", post_signin),
        web.get(r"/lang_{lang:[a-z]{2}}/signin", get_signin),
        web.post(r"/lang_{lang:[a-z]{2}}/signin", post_signin),
        web.get("/admin/devices", get_admin),
        web.post("/admin/devices/{key}/signout", post_signout),
        web.post("/admin/devices/{key}/restart", post_restart),
    ]
