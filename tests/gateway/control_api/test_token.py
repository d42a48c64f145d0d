"""The control token: Authorization: Bearer on the control API and the /admin pages, the sign-in page and the
phones' URLs open, the client's 401 message, ``gateway serve --control-token-file`` and the token made for a
non-loopback ``--http``."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.control_api.auth import (
    MIN_TOKEN_LENGTH,
    TOKEN_FILE_NAME,
    TokenFileError,
    check_bearer,
    ensure_token_file,
    read_token_file,
    token_source,
)
from gateway.control_api.client import ControlApiError, ControlClient
from gateway.control_api.client_media import MediaApiError
from gateway.server import EmbeddedGateway
from tests.gateway.control_api.conftest import assert_error
from tests.gateway.test_serve import _run as run_serve

TOKEN = "s3cret-token-0123456789-abcdefgh"


@pytest.fixture(scope="module")
def tokened(tmp_path_factory):
    gw = EmbeddedGateway(tmp_path_factory.mktemp("gw"),
                         GatewayConfig(sip="127.0.0.1:0", http="127.0.0.1:0", control_token=TOKEN))
    gw.start_in_thread()
    yield gw
    gw.stop_thread()


@pytest.fixture
def http(tokened):
    with httpx.Client(base_url=tokened.endpoints.control_url + "/api/v1", timeout=10.0) as client:
        yield client


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(resp: httpx.Response, text: str) -> dict:
    err = assert_error(resp, 401, "header.Authorization", "unauthorized")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="sipgw-lab"'
    assert text in err["message"], err
    assert TOKEN not in resp.text and "wrong-token" not in resp.text
    return err


# --- without a token: open, as before ----------------------------------------------------------------------------

def test_no_token_on_loopback_leaves_the_api_open(raw, api):
    assert raw.get("/health").status_code == 200
    doc = api.openapi()
    assert doc["components"]["securitySchemes"]["controlToken"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["controlToken"][
            "description"]}
    assert doc["security"] == []
    assert all("401" not in op["responses"] for item in doc["paths"].values() for op in item.values())


# --- with a token ------------------------------------------------------------------------------------------------

def test_every_control_route_needs_the_token(http, tokened):
    _refused(http.get("/health"), "no bearer token was sent")
    _refused(http.get("/health", headers=_bearer("wrong-token-0123456789")), "the bearer token was not accepted")
    _refused(http.get("/health", headers={"Authorization": f"Basic {TOKEN}"}), "is not 'Bearer <token>'")
    _refused(http.get("/health", headers={"Authorization": "Bearer"}), "is not 'Bearer <token>'")
    _refused(http.get("/health", headers={"Authorization": "Bearer wrong-tökén".encode()}), "not accepted")
    assert http.get("/health", headers=_bearer()).json()["status"] == "ok"
    assert http.get("/health", headers={"Authorization": f"bearer  {TOKEN}"}).status_code == 200
    # Writes are refused before anything is read or written.
    body = {"username": "mallory", "name": "Mallory"}
    _refused(http.post("/users", json=body), "no bearer token")
    _refused(http.put("/clock", json={"offset": 3600}), "no bearer token")
    _refused(http.post("/reset"), "no bearer token")
    users = http.get("/users", headers=_bearer()).json()["users"]
    assert "mallory" not in [u["username"] for u in users]
    # Every mounted route, and the unknown ones (401 before 404: nothing is learnt without the token).
    for method, path in tokened._control.route_table():
        concrete = re.sub(r"\{[^}]*\}", "x", path).removeprefix("/api/v1")
        assert http.request(method, concrete).status_code == 401, (method, path)
    _refused(http.get("/no/such/route"), "no bearer token")
    assert http.get("/no/such/route", headers=_bearer()).status_code == 404


def test_openapi_declares_the_bearer_scheme(http, tokened):
    doc = http.get("/openapi.json", headers=_bearer()).json()
    assert doc["components"]["securitySchemes"]["controlToken"]["scheme"] == "bearer"
    assert doc["security"] == [{"controlToken": []}]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"}, (method, path)


def test_client_sends_the_token_and_reads_a_401_clearly(tokened):
    url = tokened.endpoints.control_url
    with ControlClient(url, token=TOKEN) as api:
        assert api.health()["status"] == "ok"
        assert api.token == TOKEN
    with ControlClient(url) as api, pytest.raises(ControlApiError) as info:
        api.users()
    err = info.value
    assert err.status == 401 and err.code == "unauthorized" and err.where == "header.Authorization"
    assert err.message.startswith("the control API needs a token: no bearer token was sent")
    assert "SIPGW_CONTROL_TOKEN" in err.message
    with ControlClient(url, token="wrong-token-0123456789") as api, pytest.raises(ControlApiError) as info:
        api.health()
    assert info.value.message.startswith("the control API needs a token: the bearer token was not accepted")
    with ControlClient(url) as api, pytest.raises(MediaApiError) as info:  # the media routes read it the same way
        api.media.calls()
    assert info.value.status == 401 and info.value.message.startswith("the control API needs a token")


def test_media_routes_of_an_unreachable_gateway_raise_media_api_error():
    with ControlClient("http://127.0.0.1:9", timeout=2) as api, pytest.raises(MediaApiError) as info:
        api.media.calls()
    assert info.value.status == 0 and info.value.code == "unreachable"
    assert "GET /api/v1/media/calls" in info.value.message
    assert "wrong-token" not in str(info.value)


def test_sign_in_page_and_phone_urls_stay_open_admin_pages_do_not(tokened):
    prov = tokened.endpoints.provisioning_url
    with httpx.Client(base_url=prov, timeout=10.0) as web:
        page = web.get("/signin")
        assert page.status_code == 200 and "Sign in a SIP device" in page.text
        assert web.get("/lang_de/signin").status_code == 200
        posted = web.post("/signin", data={"username": "", "code": ""})  # the form's own answer, not a 401
        assert posted.status_code == 400 and "Enter your user name" in posted.text
        # What a phone fetches: answered by the provisioning logic (no such device here), never 401.
        assert web.get("/y000000000000.cfg", headers={"User-Agent": "curl/8"}).status_code not in (401,)
        assert web.get("/s/000000000000-0-000000000000/status").status_code != 401
        assert web.post("/s/000000000000-0-000000000000/signin").status_code != 401
        # The admin pages sign devices out and restart them: token needed.
        _refused(web.get("/admin/devices"), "no bearer token")
        _refused(web.post("/admin/devices/805ec012dc69/signout"), "no bearer token")
        _refused(web.post("/admin/devices/805ec012dc69/restart", headers=_bearer("wrong-token-0123456789")),
                 "not accepted")
        admin = web.get("/admin/devices", headers=_bearer())
        assert admin.status_code == 200 and "SIP devices" in admin.text


def test_check_bearer_reasons_never_contain_what_was_sent():
    assert check_bearer(f"Bearer {TOKEN}", TOKEN) is None
    for header in (None, "", "   ", "Bearer", "Token abc", f"Bearer {TOKEN}x", "Bearer x"):
        reason = check_bearer(header, TOKEN)
        assert reason and TOKEN not in reason and "abc" not in reason, header


# --- the rule: where the token comes from -------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "token_file", "source"), [
    ("127.0.0.1", None, "none"), ("127.0.0.2", None, "none"), ("::1", None, "none"), ("localhost", None, "none"),
    ("0.0.0.0", None, "generated"), ("::", None, "generated"), ("192.0.2.10", None, "generated"),
    ("fe80::1", None, "generated"), ("gw.lab.example", None, "generated"),
    ("127.0.0.1", "token.txt", "file"), ("0.0.0.0", "token.txt", "file"),
])
def test_token_source(host, token_file, source):
    assert token_source(host, token_file) == source


def test_read_token_file_problems(tmp_path):
    good = tmp_path / "good"
    good.write_text(f"  {TOKEN}  \nsecond line ignored\n")
    assert read_token_file(good) == TOKEN
    cases = {
        "empty": ("", "the file is empty"),
        "blank": ("\n\n", "the file is empty"),
        "short": ("abc123\n", f"the token has 6 characters; at least {MIN_TOKEN_LENGTH}"),
        "spaces": ("abcdefgh ijklmnopqrs\n", "spaces or control characters"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(TokenFileError, match=expected) as info:
            read_token_file(path)
        assert str(info.value).startswith(str(path)), name
    with pytest.raises(TokenFileError, match="file not found"):
        read_token_file(tmp_path / "missing")
    with pytest.raises(TokenFileError, match="is a directory"):
        read_token_file(tmp_path)


def test_token_file_is_made_private_and_reused(tmp_path):
    token, path = ensure_token_file(tmp_path)
    assert path == tmp_path / TOKEN_FILE_NAME and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n"
    path.chmod(0o644)
    assert ensure_token_file(tmp_path) == (token, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(TokenFileError, match="the token has 5 characters"):
        ensure_token_file(tmp_path)


# --- gateway serve --------------------------------------------------------------------------------------------

def _run(capsys, *args: str) -> tuple[int, str]:
    return run_serve(capsys, "--sip", "127.0.0.1:0", "--http", "127.0.0.1:0", *args)


def test_bad_token_files_exit_2_and_write_nothing(tmp_path, capsys):
    data = tmp_path / "never"
    empty = tmp_path / "empty"
    empty.write_text("")
    short = tmp_path / "short"
    short.write_text("only-15-chars-x\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(f"sip: 127.0.0.1:0\ncontrol_token: {TOKEN}\n")
    cases = [
        (["--control-token-file", str(empty)], f"--control-token-file {empty}:1: the file is empty"),
        (["--control-token-file", str(short)], f"--control-token-file {short}:1: the token has 15 characters; "
                                               "at least 16"),
        (["--control-token-file", str(tmp_path / "missing")],
         f"--control-token-file {tmp_path / 'missing'}: file not found"),
        (["--control-token-file", str(tmp_path)], "is a directory"),
        (["--config", str(config)], f"{config}:2:16: control_token: not a key of the configuration file"),
    ]
    if os.geteuid() != 0:  # root reads a mode-000 file anyway
        unreadable = tmp_path / "unreadable"
        unreadable.write_text(TOKEN)
        unreadable.chmod(0)
        cases.append((["--control-token-file", str(unreadable)], "cannot read the file"))
    for args, expected in cases:
        status, err = _run(capsys, "--data", str(data), *args)
        assert status == 2, (args, err)
        assert expected in err, (args, err)
        assert TOKEN not in err
        assert not data.exists(), args


def _fake_serve(monkeypatch, seen: list) -> None:
    """Run ``gateway serve`` up to its event loop: what the gateway would have been started with."""
    import harness.cli_gateway as cli

    async def serve(gw, ready_out, token_path=None):
        seen.append((gw.config.control_token, token_path))
        gw.store.close()
        return 0

    monkeypatch.setattr(cli, "_serve", serve)
    monkeypatch.setattr(cli, "setup_logging", lambda *a: None)


def test_serve_uses_the_token_file(tmp_path, capsys, monkeypatch):
    seen: list = []
    _fake_serve(monkeypatch, seen)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    status, err = _run(capsys, "--data", str(tmp_path / "gw"), "--control-token-file", str(token_file))
    assert status == 0, err
    [(secret, path)] = seen
    assert secret.get_secret_value() == TOKEN and path == token_file
    assert not (tmp_path / "gw" / TOKEN_FILE_NAME).exists()


def test_serve_makes_a_token_when_not_on_loopback(tmp_path, capsys, monkeypatch):
    """The non-loopback rule without leaving loopback: the decision says "generated" for this bind."""
    import harness.cli_gateway as cli

    seen: list = []
    _fake_serve(monkeypatch, seen)
    monkeypatch.setattr(cli, "token_source", lambda host, token_file: "file" if token_file else "generated")
    data = tmp_path / "gw"
    for _ in range(2):
        status, err = _run(capsys, "--data", str(data))
        assert status == 0, err
    (first, first_path), (second, second_path) = seen
    assert first_path == second_path == data / TOKEN_FILE_NAME
    assert first.get_secret_value() == second.get_secret_value() == first_path.read_text().strip()
    assert stat.S_IMODE(first_path.stat().st_mode) == 0o600
    # On loopback (the real rule): no token, nothing made.
    monkeypatch.undo()
    seen.clear()
    _fake_serve(monkeypatch, seen)
    status, err = _run(capsys, "--data", str(tmp_path / "open"))
    assert status == 0 and seen == [(None, None)]
    assert not (tmp_path / "open" / TOKEN_FILE_NAME).exists()


def test_serve_process_with_a_token_file(tmp_path):
    from tests.gateway.test_serve import _kill, _start

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    proc, ready = _start(tmp_path / "gw", "--control-token-file", str(token_file))
    try:
        assert ready["control_token"] == str(token_file)
        assert {"udp", "tcp", "tls", "control", "provisioning", "data", "pid"} <= set(ready)
        with ControlClient(ready["control"]) as api:
            with pytest.raises(ControlApiError) as info:
                api.health()
            assert info.value.status == 401
        with ControlClient(ready["control"], token=TOKEN) as api:
            assert api.health()["status"] == "ok"
        assert httpx.get(ready["provisioning"] + "/signin", timeout=10).status_code == 200
    finally:
        _kill(proc)


def test_lab_passes_the_token_from_the_environment(monkeypatch):
    from harness import lab

    made: list = []
    monkeypatch.setattr(lab, "_control_client", lambda url, token=None: made.append((url, token)) or object())
    monkeypatch.setenv("SIPGW_CONTROL_URL", "http://192.0.2.5:8080")
    monkeypatch.setenv("SIPGW_CONTROL_TOKEN", TOKEN)
    inv = Path(__file__).resolve().parents[3] / "lab_inventory.yaml"
    the_lab = lab.Lab.from_inventory(inv, gateway="192.0.2.5:5061", devices=[])
    the_lab._start_gateway()
    assert made == [("http://192.0.2.5:8080", TOKEN)]

