"""Bearer-token protection of the control API and of the provisioning server's admin pages.

When the gateway has a control token (``gateway serve --control-token-file FILE``, or the token the gateway made in
``<data dir>/control-token`` because ``--http`` is not on loopback), every control API request and every
``/admin/...`` request of the provisioning server needs ``Authorization: Bearer <token>``. A request without it,
or with another token, gets 401 with the API's JSON error document and ``WWW-Authenticate: Bearer
realm="sipgw-lab"``; the message says which of the two it was and never repeats what was sent. What a phone or a
user signing in reaches (configuration files, ``/s/<token>/...``, the ``/signin`` pages) stays open.

Without a token (the default on loopback) nothing is checked, as before.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from gateway.control_api.base import json_response

REALM = "sipgw-lab"
#: Shortest token accepted from ``--control-token-file``.
MIN_TOKEN_LENGTH = 16
#: The file in the data directory holding a token the gateway made (non-loopback ``--http``, no token file).
TOKEN_FILE_NAME = "control-token"
CHALLENGE = f'Bearer realm="{REALM}"'


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the file and the problem."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_source(http_host: str, token_file: str | None) -> str:
    """Where the control token comes from: ``"file"`` (``--control-token-file`` given), ``"generated"``
    (``<data dir>/control-token``: the control API is not on loopback, and a host name counts as not loopback),
    or ``"none"`` (loopback and no file: the API stays open, as the lab and the test suites expect)."""
    if token_file is not None:
        return "file"
    return "none" if is_loopback(http_host) else "generated"


def read_token_file(path: str | Path) -> str:
    """The token on the file's first line (stripped); :class:`TokenFileError` when it is unreadable, empty or
    shorter than :data:`MIN_TOKEN_LENGTH` characters."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TokenFileError(f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    lines = text.splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise TokenFileError(f"{path}:1: the file is empty; put the token on its first line")
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenFileError(f"{path}:1: the token has {len(token)} characters; at least {MIN_TOKEN_LENGTH} "
                             "are needed (python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise TokenFileError(f"{path}:1: the token contains spaces or control characters")
    return token


def ensure_token_file(data_dir: str | Path) -> tuple[str, Path]:
    """The token in ``<data_dir>/control-token``, made (``secrets.token_urlsafe(32)``, mode 0600) when the file
    does not exist yet, reused when it does (its mode is set back to 0600)."""
    path = Path(data_dir) / TOKEN_FILE_NAME
    if path.exists():
        token = read_token_file(path)
        try:
            os.chmod(path, 0o600)
        except OSError as exc:
            raise TokenFileError(f"{path}: cannot make it private (mode 0600): {exc.strerror or exc}") from None
        return token, path
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot create the token file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, path


def unauthorized(reason: str) -> web.Response:
    resp = json_response({"error": {"code": "unauthorized", "message": reason, "where": "header.Authorization"}},
                         status=401)
    resp.headers["WWW-Authenticate"] = CHALLENGE
    return resp


def check_bearer(header: str | None, token: str) -> str | None:
    """``None`` when ``header`` (the Authorization value) carries ``token``, else why not (without the token)."""
    if not header or not header.strip():
        return ("no bearer token was sent: send 'Authorization: Bearer <token>' (the token is in the gateway's "
                "--control-token-file, or in control-token in its data directory)")
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "the Authorization header is not 'Bearer <token>'"
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")):
        return "the bearer token was not accepted"
    return None


def bearer_middleware(token: str, protects: Callable[[str], bool] = lambda path: True):
    """An aiohttp middleware asking for ``Authorization: Bearer <token>`` on the paths ``protects`` accepts."""

    @web.middleware
    async def bearer(request: web.Request, handler) -> web.StreamResponse:
        if protects(request.path):
            reason = check_bearer(request.headers.get("Authorization"), token)
            if reason is not None:
                return unauthorized(reason)
        return await handler(request)

    return bearer


def admin_paths(path: str) -> bool:
    """The provisioning server's paths that need the token: the admin pages (sign out, restart devices)."""
    return path == "/admin" or path.startswith("/admin/")
