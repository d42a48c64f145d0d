"""SIP digest authentication: RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760.

Three parts:

* **Header values.** ``parse_challenge`` reads a WWW-Authenticate / Proxy-Authenticate value and
  ``parse_credentials`` an Authorization / Proxy-Authorization value. Parameter names are case-insensitive,
  values may be tokens or quoted strings with backslash escapes and commas inside; a malformed value raises
  ``DigestParseError`` saying what is wrong and at which offset. ``str()`` of either object serialises it.
* **Server side.** ``DigestServer`` issues challenges whose nonce needs no server state: it carries its issue
  time and an HMAC over that time, a random salt and the realm, so any process holding the secret (or a
  restarted one) can verify it, and an expired but authentic nonce is answered with ``stale=true``
  (RFC 7616 §3.3). Nonce counts are checked against a sliding window per nonce to refuse replays, in a
  table of bounded size.
* **Client side.** ``authorization_for`` computes the credentials for a challenge (the emulated parties
  and the tests use it); ``DigestClient`` also keeps the nonce count.

Algorithms: MD5, SHA-256 and SHA-512-256 (RFC 7616 §6.1, the last two brought to SIP by RFC 8760), each with
its ``-sess`` variant. Quality of protection: ``auth`` and ``auth-int``, plus the RFC 2069 form without qop,
which the server accepts only when told to (there is no nonce count to stop replays there).

Not supported: ``userhash=true`` and the ``username*`` extended notation of RFC 7616 §3.4.4/§4 (no SIP device
in the catalogue sends them); such credentials are reported as unsupported instead of being misread.
"""

from __future__ import annotations

import binascii
import enum
import functools
import hashlib
import hmac
import re
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .abnf import TOKEN_ALPHABET, TOKEN_CHARS, is_token
from .randomness import random_bytes as _random_bytes
from .randomness import random_hex

__all__ = [
    "ALGORITHMS",
    "CHALLENGE_HEADERS",
    "AuthOutcome",
    "AuthResult",
    "DigestChallenge",
    "DigestClient",
    "DigestCredentials",
    "DigestParseError",
    "DigestServer",
    "NonceCountTracker",
    "authorization_for",
    "choose_challenge",
    "compute_ha1",
    "compute_response",
    "parse_auth_params",
    "parse_challenge",
    "parse_credentials",
]

# --------------------------------------------------------------------------------------------------
# Algorithms (RFC 7616 §3.4.2, IANA "HTTP Digest Algorithm Values"; RFC 8760 §2.2 for SIP)
# --------------------------------------------------------------------------------------------------

#: The hash of each base algorithm. MD5 and SHA-256 are hashlib's own constructors (C functions; ``hashlib.new`` is
#: a Python function in front of the same thing, and a digest check hashes twice); SHA-512/256 has no constructor
#: of its own and goes through ``hashlib.new``.
_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {
    "MD5": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-512-256": functools.partial(hashlib.new, "sha512_256"),
}

#: Every algorithm name this module computes, in its canonical spelling.
ALGORITHMS: Final[tuple[str, ...]] = (
    "MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess",
)  # fmt: skip
_CANONICAL_ALGORITHM: Final = {name.lower(): name for name in ALGORITHMS}

#: The header that carries the challenge and the one that carries the answer, per status (RFC 3261 §22.2
#: for a UAS or registrar, §22.3 for a proxy).
CHALLENGE_HEADERS: dict[int, tuple[str, str]] = {
    401: ("WWW-Authenticate", "Authorization"),
    407: ("Proxy-Authenticate", "Proxy-Authorization"),
}


def _canonical_algorithm(name: str) -> str | None:
    return _CANONICAL_ALGORITHM.get(name.lower())


def _base_algorithm(algorithm: str) -> str:
    return algorithm[:-5] if algorithm.endswith("-sess") else algorithm


def _hash_hex(algorithm: str, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _HASHES[_base_algorithm(algorithm)](raw).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username ":" realm ":" password): what a registrar stores instead of the password.

    For the ``-sess`` algorithms this is the stored value too; the session key is derived per nonce.
    """
    canonical = _require_algorithm(algorithm)
    return _hash_hex(canonical, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (and RFC 2617 §3.2.2.1 when ``qop`` is None)."""
    canonical = _require_algorithm(algorithm)
    if canonical.endswith("-sess"):
        if cnonce is None:
            raise ValueError(f"algorithm {canonical} needs a cnonce (RFC 7616 §3.4.2)")
        ha1 = _hash_hex(canonical, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _hash_hex(canonical, f"{method}:{uri}:{_hash_hex(canonical, body)}")
    else:
        ha2 = _hash_hex(canonical, f"{method}:{uri}")
    if qop is None:
        return _hash_hex(canonical, f"{ha1}:{nonce}:{ha2}")
    if qop not in ("auth", "auth-int"):
        raise ValueError(f"unknown qop {qop!r}; expected 'auth' or 'auth-int'")
    if nc is None or cnonce is None:
        raise ValueError("qop requires both nc and cnonce (RFC 7616 §3.4)")
    return _hash_hex(canonical, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _require_algorithm(algorithm: str) -> str:
    canonical = _canonical_algorithm(algorithm)
    if canonical is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}")
    return canonical


# --------------------------------------------------------------------------------------------------
# Header value grammar: RFC 3261 §25.1 (challenge, credentials), RFC 7235 §2.1 (auth-param)
# --------------------------------------------------------------------------------------------------


class DigestParseError(ValueError):
    """A WWW-Authenticate/Authorization value could not be read; the message says what and where."""

    def __init__(self, reason: str, text: str, offset: int | None = None) -> None:
        self.reason = reason
        self.text = text
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where} in {text!r}")


_WS: Final = " \t\r\n"
# RFC 3261 §25.1 token characters.
_TOKEN_CHARS: Final = frozenset(TOKEN_ALPHABET)


# The well-formed case of parse_auth_params in two regular expressions: the scheme, then one parameter at a
# time (list separators and white space before it, ``name = value``, white space after it). Anything they do not
# match exactly goes to the character-by-character reader, which says what is wrong and where.
_TOKEN_CLASS = rf"[{TOKEN_CHARS}]"
_SCHEME_RE: Final = re.compile(rf"[ \t\r\n]*({_TOKEN_CLASS}+)(?=[ \t\r\n]|\Z)")
_PARAM_RE: Final = re.compile(rf'[ \t\r\n,]*({_TOKEN_CLASS}+)[ \t\r\n]*=[ \t\r\n]*'
                       rf'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^ \t\r\n,"]+))[ \t\r\n]*(?:,|\Z)', re.DOTALL)
_QUOTED_PAIR_RE: Final = re.compile(r"\\(.)", re.DOTALL)


def parse_auth_params(text: str) -> tuple[str, dict[str, str]]:
    """Split an authentication header value into its scheme and ``{lower-case name: value}``.

    Quoted values are unescaped (``\\x`` -> ``x``); commas inside quotes do not separate parameters; empty
    list elements (``a=1,,b=2``) are skipped as RFC 7230 §7 allows. A parameter given twice is an error.
    Unquoted values are read up to the next comma or white space, so a sloppy ``uri=sip:a@b`` still parses.
    """
    if not isinstance(text, str):
        raise TypeError(f"authentication header value must be str, got {type(text).__name__}")
    quick = _parse_auth_params_quick(text)
    if quick is not None:
        return quick
    fast = _parse_auth_params_fast(text)
    return fast if fast is not None else _parse_auth_params_slow(text)


#: The scheme and parameter names phones write, known to be tokens: most of _is_token's calls end here, without
#: ``str.strip`` over the 77-character alphabet.
_USUAL_TOKENS: Final = frozenset({
    "Digest", "username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "qop", "nc", "opaque",
    "userhash", "stale", "domain", "charset",
})


def _is_token(text: str) -> bool:
    return text in _USUAL_TOKENS or is_token(text)


def _parse_auth_params_quick(text: str) -> tuple[str, dict[str, str]] | None:
    """parse_auth_params for what phones send, by string search instead of regular expressions: one space after
    the scheme, ``name=value`` without white space around ``=``, parameters separated by ``,`` or ``, ``,
    quoted values without escapes, no tabs or line breaks. None for anything else: the regular expressions (and
    after them the character-by-character reader) take it, so the result is theirs whenever this one gives up."""
    if "\\" in text or "\t" in text or "\r" in text or "\n" in text:
        return None
    space = text.find(" ")
    if space <= 0 or not _is_token(text[:space]):
        return None
    params: dict[str, str] = {}
    n = len(text)
    pos = space + 1
    while pos < n:
        eq = text.find("=", pos)
        if eq < 0:
            return None
        name = text[pos:eq]
        if not _is_token(name):
            return None
        name = name.lower()
        if name in params:
            return None
        pos = eq + 1
        if pos < n and text[pos] == '"':
            end = text.find('"', pos + 1)
            if end < 0:
                return None
            params[name] = text[pos + 1:end]
            pos = end + 1
        else:
            end = text.find(",", pos)
            if end < 0:
                end = n
            value = text[pos:end]
            if not value or " " in value or '"' in value:
                return None
            params[name] = value
            pos = end
        if pos == n:
            break
        if text[pos] != ",":
            return None
        pos += 1
        if pos < n and text[pos] == " ":
            pos += 1
    return text[:space], params


def _parse_auth_params_fast(text: str) -> tuple[str, dict[str, str]] | None:
    """parse_auth_params for well-formed text; None for anything else (the slow reader explains it)."""
    m = _SCHEME_RE.match(text)
    if m is None:
        return None
    scheme = m.group(1)
    pos = m.end()
    n = len(text)
    params: dict[str, str] = {}
    match = _PARAM_RE.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            if text[pos:].strip(_WS + ","):
                return None
            break
        name = m.group(1).lower()
        if name in params:
            return None
        quoted = m.group(2)
        if quoted is None:
            params[name] = m.group(3)
        else:
            params[name] = _QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        pos = m.end()
    return scheme, params


def _parse_auth_params_slow(text: str) -> tuple[str, dict[str, str]]:
    n = len(text)
    i = 0
    while i < n and text[i] in _WS:
        i += 1
    start = i
    while i < n and text[i] in _TOKEN_CHARS:
        i += 1
    scheme = text[start:i]
    if not scheme:
        raise DigestParseError("missing authentication scheme", text, start)
    if i < n and text[i] not in _WS:
        raise DigestParseError(f"unexpected character {text[i]!r} after scheme {scheme!r}", text, i)
    params: dict[str, str] = {}
    while True:
        # Skip white space and empty list elements.
        while i < n and (text[i] in _WS or text[i] == ","):
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] in _TOKEN_CHARS:
            i += 1
        name = text[start:i].lower()
        if not name:
            raise DigestParseError(f"expected a parameter name, found {text[i]!r}", text, i)
        while i < n and text[i] in _WS:
            i += 1
        if i >= n or text[i] != "=":
            raise DigestParseError(f"expected '=' after parameter name {name!r}", text, i)
        i += 1
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == '"':
            value, i = _read_quoted(text, i)
        else:
            start = i
            while i < n and text[i] not in _WS and text[i] not in ',"':
                i += 1
            value = text[start:i]
            if not value:
                raise DigestParseError(f"missing value for parameter {name!r}", text, start)
        if name in params:
            raise DigestParseError(f"parameter {name!r} appears more than once", text, start)
        params[name] = value
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] != ",":
            raise DigestParseError(f"expected ',' after the value of {name!r}, found {text[i]!r}", text, i)
    return scheme, params


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``text[i] == '"'``; return (unescaped value, index after it)."""
    opening = i
    i += 1
    out: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise DigestParseError("unterminated quoted string", text, opening)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _digest_params(text: str, what: str) -> dict[str, str]:
    scheme, params = parse_auth_params(text)
    if scheme.lower() != "digest":
        raise DigestParseError(f"{what} uses scheme {scheme!r}, not Digest", text, None)
    return params


def _require(params: dict[str, str], name: str, text: str, what: str) -> str:
    value = params.get(name)
    if value is None:
        raise DigestParseError(f"{what} has no {name!r} parameter", text, None)
    return value


_CHALLENGE_KNOWN: Final = frozenset({"realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain", "userhash",
                              "charset"})
_CREDENTIALS_KNOWN: Final = frozenset({"username", "realm", "nonce", "uri", "response", "algorithm", "cnonce",
                                "qop", "nc", "opaque", "userhash", "username*"})


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A Digest challenge (WWW-Authenticate or Proxy-Authenticate value)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    userhash: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> DigestChallenge:
        return parse_challenge(text)

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        parts.append(f"nonce={_quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{name}={_quote(value)}" for name, value in self.extra.items())
        return "Digest " + ", ".join(parts)


def _challenge_text_parts(challenge: DigestChallenge) -> tuple[str, str]:
    """``str(challenge)`` split around its nonce (a nonce of this module is base64url: nothing to quote)."""
    marker = "\x00nonce\x00"
    text = str(DigestChallenge(challenge.realm, marker, challenge.algorithm, challenge.qop, challenge.opaque,
                               challenge.stale, challenge.domain, challenge.userhash, challenge.extra))
    head, tail = text.split(marker)
    return head, tail


def parse_challenge(text: str) -> DigestChallenge:
    """Parse a WWW-Authenticate or Proxy-Authenticate header value (one Digest challenge)."""
    what = "Digest challenge"
    params = _digest_params(text, what)
    algorithm_text = params.get("algorithm", "MD5")
    # An unknown algorithm is kept verbatim: the client skips such a challenge (RFC 8760 §2.4).
    algorithm = _canonical_algorithm(algorithm_text) or algorithm_text
    qop = tuple(
        token.strip().lower() for token in params.get("qop", "").split(",") if token.strip()
    )
    return DigestChallenge(
        realm=_require(params, "realm", text, what),
        nonce=_require(params, "nonce", text, what),
        algorithm=algorithm,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "false").lower() == "true",
        domain=params.get("domain"),
        userhash=params.get("userhash", "false").lower() == "true",
        extra={k: v for k, v in params.items() if k not in _CHALLENGE_KNOWN},
    )


@dataclass(slots=True, init=False)  # a value, never changed; not frozen, see endpoint.py's events
class DigestCredentials:
    """Digest credentials (Authorization or Proxy-Authorization value)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    qop: str | None = None
    nc: str | None = None
    opaque: str | None = None
    userhash: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def __init__(self, username: str, realm: str, nonce: str, uri: str, response: str, algorithm: str = "MD5",
                 cnonce: str | None = None, qop: str | None = None, nc: str | None = None,
                 opaque: str | None = None, userhash: bool = False, extra: Mapping[str, str] | None = None) -> None:
        self.username = username
        self.realm = realm
        self.nonce = nonce
        self.uri = uri
        self.response = response
        self.algorithm = algorithm
        self.cnonce = cnonce
        self.qop = qop
        self.nc = nc
        self.opaque = opaque
        self.userhash = userhash
        self.extra = {} if extra is None else extra

    @classmethod
    def parse(cls, text: str) -> DigestCredentials:
        return parse_credentials(text)

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{name}={_quote(value)}" for name, value in self.extra.items())
        return "Digest " + ", ".join(parts)


#: Recently parsed credentials by header text: a server reads the user name first and then verifies the same
#: header (the value is frozen, so it can be shared). Small and emptied when full; errors are not kept.
_RECENT_CREDENTIALS: Final[dict[str, DigestCredentials]] = {}
_RECENT_CREDENTIALS_MAX: Final = 64


def parse_credentials(text: str) -> DigestCredentials:
    """Parse an Authorization or Proxy-Authorization header value (Digest credentials)."""
    hit = _RECENT_CREDENTIALS.get(text)
    if hit is not None:
        return hit
    credentials = _parse_credentials(text)
    if len(_RECENT_CREDENTIALS) >= _RECENT_CREDENTIALS_MAX:
        _RECENT_CREDENTIALS.clear()
    _RECENT_CREDENTIALS[text] = credentials
    return credentials


def _parse_credentials(text: str) -> DigestCredentials:
    what = "Digest credentials"
    params = _digest_params(text, what)
    if "username" not in params and "username*" in params:
        raise DigestParseError("the username* notation of RFC 7616 §3.4.4 is not supported", text, None)
    algorithm_text = params.get("algorithm", "MD5")
    nc = params.get("nc")
    if nc is not None and (len(nc) != 8 or nc.strip("0123456789abcdefABCDEF")):
        raise DigestParseError(f"nc must be 8 hexadecimal digits, got {nc!r}", text, None)
    qop = params.get("qop")
    return DigestCredentials(
        username=_require(params, "username", text, what),
        realm=_require(params, "realm", text, what),
        nonce=_require(params, "nonce", text, what),
        uri=_require(params, "uri", text, what),
        response=_require(params, "response", text, what),
        algorithm=_canonical_algorithm(algorithm_text) or algorithm_text,
        cnonce=params.get("cnonce"),
        qop=qop.lower() if qop is not None else None,
        nc=nc.lower() if nc is not None else None,
        opaque=params.get("opaque"),
        userhash=params.get("userhash", "false").lower() == "true",
        extra={k: v for k, v in params.items() if k not in _CREDENTIALS_KNOWN},
    )


# --------------------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------------------


def choose_challenge(challenges: Iterable[DigestChallenge | str]) -> DigestChallenge:
    """The first challenge whose algorithm this module supports (RFC 8760 §2.4: the server lists its
    preferred algorithm first, and the client uses the topmost one it supports)."""
    seen: list[str] = []
    for item in challenges:
        challenge = parse_challenge(item) if isinstance(item, str) else item
        if _canonical_algorithm(challenge.algorithm) is not None:
            return challenge
        seen.append(challenge.algorithm)
    raise ValueError(f"no supported digest algorithm among the challenges (offered: {seen or 'none'})")


def authorization_for(
    challenge: DigestChallenge | str,
    *,
    username: str,
    method: str,
    uri: str,
    password: str | None = None,
    ha1: str | None = None,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
    qop: str | None = None,
) -> DigestCredentials:
    """Credentials answering ``challenge`` for a request ``method uri`` (RFC 7616 §3.4).

    ``qop`` picks one of the offered values; by default "auth" when offered, else "auth-int", else none
    (the RFC 2069 form, only when the challenge offers no qop at all).
    """
    if isinstance(challenge, str):
        challenge = parse_challenge(challenge)
    algorithm = _require_algorithm(challenge.algorithm)
    if (password is None) == (ha1 is None):
        raise ValueError("give exactly one of password or ha1")
    if ha1 is None:
        assert password is not None
        ha1 = compute_ha1(username, challenge.realm, password, algorithm)
    if qop is None:
        if "auth" in challenge.qop:
            qop = "auth"
        elif "auth-int" in challenge.qop:
            qop = "auth-int"
        elif challenge.qop:
            raise ValueError(f"the challenge offers only unsupported qop values {challenge.qop}")
    elif qop not in challenge.qop:
        raise ValueError(f"qop {qop!r} was not offered by the challenge (offered: {challenge.qop})")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce count must be in 1..2**32-1, got {nc}")
    needs_cnonce = qop is not None or algorithm.endswith("-sess")
    if needs_cnonce and cnonce is None:
        cnonce = random_hex(8)
    nc_text = f"{nc:08x}" if qop is not None else None
    response = compute_response(
        algorithm=algorithm,
        ha1=ha1,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if needs_cnonce else None,
        body=body,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=algorithm,
        cnonce=cnonce if needs_cnonce else None,
        qop=qop,
        nc=nc_text,
        opaque=challenge.opaque,
    )


class DigestClient:
    """Answers challenges for one user, counting nonce uses as RFC 7616 §3.4 requires."""

    __slots__ = ("_counts", "password", "username")

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._counts: OrderedDict[str, int] = OrderedDict()

    def authorize(
        self,
        challenges: DigestChallenge | str | Sequence[DigestChallenge | str],
        *,
        method: str,
        uri: str,
        body: bytes = b"",
    ) -> DigestCredentials:
        """Credentials for the preferred supported challenge, with the next nonce count for its nonce."""
        if isinstance(challenges, DigestChallenge | str):
            challenges = [challenges]
        challenge = choose_challenge(challenges)
        count = self._counts.pop(challenge.nonce, 0) + 1
        self._counts[challenge.nonce] = count
        while len(self._counts) > 32:
            self._counts.popitem(last=False)
        return authorization_for(
            challenge, username=self.username, password=self.password, method=method, uri=uri, nc=count,
            body=body,
        )


# --------------------------------------------------------------------------------------------------
# Server side
# --------------------------------------------------------------------------------------------------


class AuthOutcome(enum.Enum):
    OK = "ok"
    STALE = "stale nonce"  # authentic, correct response, but the nonce expired: challenge with stale=true
    MALFORMED = "malformed credentials"
    WRONG_REALM = "wrong realm"
    UNSUPPORTED = "unsupported algorithm or qop"
    BAD_NONCE = "nonce not issued by this server"
    WRONG_RESPONSE = "wrong response (password)"
    URI_MISMATCH = "digest uri does not match the request"
    REPLAY = "nonce count replayed"
    NO_QOP = "credentials without qop are not accepted"


@dataclass(slots=True, unsafe_hash=True, init=False)  # a value, never changed; see endpoint.py's events
class AuthResult:
    outcome: AuthOutcome
    reason: str
    username: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK

    @property
    def stale(self) -> bool:
        """True when the next challenge should carry ``stale=true`` (the user's password was right)."""
        return self.outcome in (AuthOutcome.STALE, AuthOutcome.REPLAY)

    def __init__(self, outcome: AuthOutcome, reason: str, username: str | None = None) -> None:
        self.outcome = outcome
        self.reason = reason
        self.username = username


_NONCE_STRUCT: Final = struct.Struct(">Q8s")  # issue time in milliseconds, random salt
_NONCE_MAC_LEN: Final = 16
_NONCE_LEN: Final = _NONCE_STRUCT.size + _NONCE_MAC_LEN
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


class NonceCountTracker:
    """Per-nonce sliding window of the nonce counts already accepted (replay protection).

    Memory is bounded by ``max_nonces`` entries. When an entry must be evicted, its issue time raises a
    watermark; a nonce issued at or before the watermark that is no longer tracked is refused as stale, so
    forgetting a nonce can cost one extra challenge but never lets a recorded request be replayed.
    """

    __slots__ = ("_entries", "_watermark", "max_nonces", "window")

    def __init__(self, max_nonces: int = 10_000, window: int = 64) -> None:
        if max_nonces < 1 or window < 1:
            raise ValueError("max_nonces and window must be positive")
        self.max_nonces = max_nonces
        self.window = window
        # nonce -> (highest nc, bitmap of accepted counts below it, issue time)
        self._entries: OrderedDict[str, tuple[int, int, float]] = OrderedDict()
        self._watermark = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def check_and_record(self, nonce: str, nc: int, issued: float) -> AuthOutcome:
        """OK and record ``nc`` if it was not seen for ``nonce``; REPLAY if it was; STALE if forgotten."""
        entry = self._entries.get(nonce)
        if entry is None:
            if issued <= self._watermark:
                return AuthOutcome.STALE
            self._entries[nonce] = (nc, 1, issued)
            self._evict()
            return AuthOutcome.OK
        top, bits, _ = entry
        if nc > top:
            shift = nc - top
            bits = ((bits << shift) | 1) & ((1 << self.window) - 1) if shift < self.window else 1
            top = nc
        else:
            offset = top - nc
            if offset >= self.window or bits & (1 << offset):
                return AuthOutcome.REPLAY
            bits |= 1 << offset
        self._entries[nonce] = (top, bits, issued)
        self._entries.move_to_end(nonce)
        return AuthOutcome.OK

    def forget_older_than(self, issued_before: float) -> None:
        """Drop entries for nonces issued before ``issued_before`` (they are stale anyway)."""
        for nonce in [n for n, (_, _, issued) in self._entries.items() if issued < issued_before]:
            del self._entries[nonce]

    def _evict(self) -> None:
        while len(self._entries) > self.max_nonces:
            _, (_, _, issued) = self._entries.popitem(last=False)
            self._watermark = max(self._watermark, issued)


class DigestServer:
    """Issues and verifies Digest challenges for one realm, with stateless HMAC nonces.

    ``secret`` signs nonces; pass several to rotate keys (the first signs, all verify). ``now`` is wall-clock
    seconds (``time.time()``), so that nonces survive a restart and are valid in every process sharing the
    secret. ``algorithms`` are offered in order of preference, one challenge each (RFC 8760 §2.4).
    """

    __slots__ = (
        "_header_parts", "_keys", "_next_sweep", "_random", "_realm_bytes", "algorithms", "allow_no_qop",
        "clock_skew", "nonce_lifetime", "opaque", "qop", "realm", "tracker",
    )  # fmt: skip

    def __init__(
        self,
        realm: str,
        secret: bytes | Sequence[bytes],
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        qop: Sequence[str] = ("auth",),
        nonce_lifetime: float = 300.0,
        clock_skew: float = 5.0,
        opaque: str | None = None,
        allow_no_qop: bool = False,
        max_tracked_nonces: int = 10_000,
        random_bytes: Callable[[int], bytes] = _random_bytes,
    ) -> None:
        keys = [secret] if isinstance(secret, bytes | bytearray) else list(secret)
        if not keys or any(not isinstance(k, bytes | bytearray) or len(k) < 16 for k in keys):
            raise ValueError("secret must be bytes of at least 16 bytes (or a non-empty list of such)")
        if not algorithms:
            raise ValueError("at least one digest algorithm must be offered")
        for value in qop:
            if value not in ("auth", "auth-int"):
                raise ValueError(f"unsupported qop {value!r}; expected 'auth' or 'auth-int'")
        if nonce_lifetime <= 0:
            raise ValueError(f"nonce_lifetime must be positive, got {nonce_lifetime}")
        self.realm = realm
        # Nonce MAC keys: BLAKE2s keyed hashing (RFC 7693 §2.5) takes keys of at most 32 bytes, so each secret is
        # hashed to one; the first signs, all verify (a key rotation keeps the nonces already issued valid).
        self._keys = [hashlib.sha256(b"sipgw-lab nonce key\0" + bytes(k)).digest() for k in keys]
        self.algorithms = tuple(_require_algorithm(a) for a in algorithms)
        self.qop = tuple(qop)
        self.nonce_lifetime = nonce_lifetime
        self.clock_skew = clock_skew
        self.opaque = opaque
        self.allow_no_qop = allow_no_qop
        self.tracker = NonceCountTracker(max_tracked_nonces)
        self._random = random_bytes
        self._next_sweep = float("-inf")
        self._realm_bytes = realm.encode("utf-8")
        # The text of each challenge around its nonce, by stale flag: what str(DigestChallenge) writes.
        self._header_parts: dict[bool, list[tuple[str, str]]] = {
            stale: [_challenge_text_parts(DigestChallenge(realm=realm, nonce="", algorithm=algorithm, qop=self.qop,
                                                          opaque=opaque, stale=stale))
                    for algorithm in self.algorithms]
            for stale in (False, True)
        }

    # -- nonces ------------------------------------------------------------------------------------

    def make_nonce(self, now: float) -> str:
        payload = _NONCE_STRUCT.pack(int(now * 1000), self._random(8))
        mac = self._mac(self._keys[0], payload)
        # base64url without padding (RFC 4648 §5), from binascii directly: base64.urlsafe_b64encode is two
        # Python functions in front of the same C call.
        return binascii.b2a_base64(payload + mac, newline=False).translate(_TO_URLSAFE).decode("ascii").rstrip("=")

    def _mac(self, key: bytes, payload: bytes) -> bytes:
        # Keyed BLAKE2s is a MAC by design (RFC 7693 §2.5, no HMAC construction needed) and, being built into
        # hashlib, costs about a third of an OpenSSL HMAC-SHA256 call: one per challenge and one per verification.
        return hashlib.blake2s(payload + self._realm_bytes, key=key, digest_size=_NONCE_MAC_LEN).digest()

    def nonce_issue_time(self, nonce: str) -> float | None:
        """The issue time (seconds) of a nonce this server signed, or None if it is not authentic."""
        try:
            # What base64.urlsafe_b64decode does, without its Python layers: ASCII only (UnicodeEncodeError is a
            # ValueError), the URL-safe alphabet mapped back, characters outside the alphabet skipped.
            raw = binascii.a2b_base64((nonce + "=" * (-len(nonce) % 4)).encode("ascii").translate(_FROM_URLSAFE))
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_LEN:
            return None
        payload, mac = raw[: _NONCE_STRUCT.size], raw[_NONCE_STRUCT.size :]
        if not any(hmac.compare_digest(mac, self._mac(key, payload)) for key in self._keys):
            return None
        millis, _salt = _NONCE_STRUCT.unpack(payload)
        return millis / 1000.0

    # -- challenges --------------------------------------------------------------------------------

    def challenges(self, now: float, *, stale: bool = False) -> list[DigestChallenge]:
        """One challenge per offered algorithm, preferred first, all with the same fresh nonce."""
        nonce = self.make_nonce(now)
        return [
            DigestChallenge(
                realm=self.realm, nonce=nonce, algorithm=algorithm, qop=self.qop, opaque=self.opaque,
                stale=stale,
            )
            for algorithm in self.algorithms
        ]

    def challenge_values(self, now: float, *, stale: bool = False) -> list[str]:
        """The header values of :meth:`challenges` (``str`` of each, same fresh nonce), written without
        building the challenge objects: what a 401 or 407 carries (RFC 3261 §22.4, §22.3)."""
        nonce = self.make_nonce(now)
        return [head + nonce + tail for head, tail in self._header_parts[stale]]

    def challenge(self, now: float, *, stale: bool = False) -> DigestChallenge:
        """The preferred challenge only."""
        return self.challenges(now, stale=stale)[0]

    # -- verification ------------------------------------------------------------------------------

    def verify(
        self,
        credentials: DigestCredentials | str,
        *,
        method: str,
        now: float,
        password: str | None = None,
        ha1: str | Mapping[str, str] | None = None,
        body: bytes = b"",
        request_uri: str | None = None,
    ) -> AuthResult:
        """Check credentials for a request ``method`` (CSeq method; RFC 3261 §22.4 uses the request's).

        Give the user's ``password`` or ``ha1`` — one string for the credentials' algorithm, or a mapping
        from base algorithm ("MD5", "SHA-256", "SHA-512-256") to HA1. ``request_uri``, when given, must equal
        the ``uri`` of the credentials (RFC 7616 §3.4.6).
        """
        if isinstance(credentials, str):
            try:
                credentials = parse_credentials(credentials)
            except DigestParseError as exc:
                return AuthResult(AuthOutcome.MALFORMED, str(exc))
        creds = credentials
        user = creds.username

        def fail(outcome: AuthOutcome, reason: str) -> AuthResult:
            return AuthResult(outcome, reason, user)

        if creds.realm != self.realm:
            return fail(AuthOutcome.WRONG_REALM, f"realm {creds.realm!r} is not {self.realm!r}")
        algorithm = _canonical_algorithm(creds.algorithm)
        if algorithm is None or algorithm not in self.algorithms:
            return fail(AuthOutcome.UNSUPPORTED, f"algorithm {creds.algorithm!r} was not offered")
        if creds.userhash:
            return fail(AuthOutcome.UNSUPPORTED, "userhash=true is not supported")
        if creds.qop is None:
            if not self.allow_no_qop:
                return fail(AuthOutcome.NO_QOP, "credentials carry no qop (RFC 2069 form)")
        elif creds.qop not in self.qop:
            return fail(AuthOutcome.UNSUPPORTED, f"qop {creds.qop!r} was not offered")
        elif creds.nc is None or not creds.cnonce:
            return fail(AuthOutcome.MALFORMED, "qop given without nc or cnonce")
        if algorithm.endswith("-sess") and not creds.cnonce:
            return fail(AuthOutcome.MALFORMED, f"{algorithm} needs a cnonce")
        if self.opaque is not None and creds.opaque != self.opaque:
            return fail(AuthOutcome.BAD_NONCE, "opaque does not match the challenge")
        if request_uri is not None and creds.uri != request_uri:
            return fail(AuthOutcome.URI_MISMATCH, f"digest uri {creds.uri!r} is not the request URI")
        issued = self.nonce_issue_time(creds.nonce)
        if issued is None:
            return fail(AuthOutcome.BAD_NONCE, "nonce was not issued by this server or was altered")
        if issued > now + self.clock_skew:
            return fail(AuthOutcome.BAD_NONCE, "nonce was issued in the future")

        stored = self._ha1_for(algorithm, user, password, ha1)
        if stored is None:
            return fail(AuthOutcome.UNSUPPORTED, f"no HA1 known for algorithm {_base_algorithm(algorithm)}")
        expected = compute_response(
            algorithm=algorithm, ha1=stored, nonce=creds.nonce, method=method, uri=creds.uri, qop=creds.qop,
            nc=creds.nc, cnonce=creds.cnonce, body=body,
        )
        if not hmac.compare_digest(expected, creds.response.lower()):
            return fail(AuthOutcome.WRONG_RESPONSE, "response does not match (wrong password?)")
        if now - issued > self.nonce_lifetime:
            return fail(AuthOutcome.STALE, f"nonce expired {now - issued - self.nonce_lifetime:.0f} s ago")
        if creds.nc is not None:
            outcome = self.tracker.check_and_record(creds.nonce, int(creds.nc, 16), issued)
            if outcome is AuthOutcome.REPLAY:
                return fail(outcome, f"nonce count {creds.nc} was already used with this nonce")
            if outcome is AuthOutcome.STALE:
                return fail(outcome, "nonce no longer tracked; a new one is needed")
            if now >= self._next_sweep:
                # Expired nonces are refused before the tracker is consulted; drop them now and then.
                self.tracker.forget_older_than(now - self.nonce_lifetime - self.clock_skew)
                self._next_sweep = now + self.nonce_lifetime / 4
        return AuthResult(AuthOutcome.OK, "authenticated", user)

    def _ha1_for(
        self, algorithm: str, username: str, password: str | None, ha1: str | Mapping[str, str] | None
    ) -> str | None:
        if (password is None) == (ha1 is None):
            raise ValueError("give exactly one of password or ha1")
        if password is not None:
            return compute_ha1(username, self.realm, password, algorithm)
        if isinstance(ha1, str):
            return ha1.lower()
        assert ha1 is not None
        value = ha1.get(_base_algorithm(algorithm))
        return value.lower() if value is not None else None
