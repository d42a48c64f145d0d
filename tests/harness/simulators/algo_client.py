"""Request signing for the Algo tests (the client side of the HMAC scheme)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from email.utils import formatdate

import httpx

from harness.simulators.algo_rest import hmac_authorization


def signed(client: httpx.Client, method: str, path: str, body: object = None, *, password: str = "algo",
           skew_s: float = 0.0, nonce: str | None = None) -> httpx.Response:
    now = int(time.time() + skew_s)
    nonce = nonce or secrets.token_hex(6)
    headers = {"Date": formatdate(now, usegmt=True)}
    content = b""
    md5 = ctype = ""
    if body is not None:
        content = json.dumps(body).encode()
        md5, ctype = hashlib.md5(content).hexdigest(), "application/json"
        headers.update({"Content-MD5": md5, "Content-Type": ctype})
    headers["Authorization"] = hmac_authorization(password, method, path, now, nonce, content_md5=md5,
                                                  content_type=ctype)
    return client.request(method, path, content=content or None, headers=headers)
