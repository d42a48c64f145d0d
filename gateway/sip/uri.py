"""Structured values of SIP headers: URIs, name-addr, Via and CSeq.

Each class has a ``parse`` classmethod that raises :class:`SipParseError` (status hint 400) saying what
is wrong, and a ``__str__`` that writes the value back in canonical form. Parsing is done with plain
string operations and the anchored expressions of :mod:`gateway.sip.abnf`; none of it backtracks.
"""

from __future__ import annotations

import ipaddress
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from gateway.sip.abnf import (
    CSEQ_RE,
    DISPLAY_TOKENS_RE,
    ESCAPE_BAD_RE,
    HOSTNAME_RE,
    IPV4_RE,
    PARAM_RE,
    SCHEME_RE,
    TOKEN_ALPHABET,
    TOKEN_RE,
    URI_HEADER_CHARS_RE,
    URI_PARAM_CHARS_RE,
    URI_PASSWORD_RE,
    URI_USER_RE,
    VIA_SENT_RE,
    is_token,
    made_of,
)
from gateway.sip.errors import SipParseError, printable

__all__ = ["CSeq", "NameAddr", "SipURI", "Via", "format_params", "parse_cseq_text", "parse_params"]

Params = dict[str, str | None]

MAX_CSEQ: Final = 2**32 - 1  # RFC 3261 §8.1.1.5: a 32-bit unsigned integer

# Characters left unescaped when writing each URI component (RFC 3261 §25.1); quote() always keeps
# alphanumerics and "_.-~".
_SAFE_USER: Final = "!*'()&=+$,;?/"
_SAFE_PASSWORD: Final = "!*'()&=+$,"
_SAFE_PARAM: Final = "!*'()[]/:&+$"
_SAFE_HEADER: Final = "!*'()[]/?:+$"


def _unescape(text: str, what: str) -> str:
    """Undo %HH escapes once (never recursively, RFC 4475 §3.1.1.3)."""
    if "%" not in text:
        return text
    if ESCAPE_BAD_RE.search(text):
        raise SipParseError(f"bad %-escape in URI {what} {printable(text)}")
    return unquote(text, errors="surrogateescape")


#: What quote() never escapes (RFC 3986 unreserved).
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"


_KEPT: Final = {safe: _UNRESERVED + safe for safe in (_SAFE_USER, _SAFE_PASSWORD, _SAFE_PARAM, _SAFE_HEADER)}


def _escape(text: str, safe: str) -> str:
    kept = _KEPT.get(safe)
    if kept is not None and not text.strip(kept):
        return text  # the usual user part or parameter: every character is kept as it is by quote() too
    return quote(text, safe=safe, errors="surrogateescape")


def _where(what: str, whole: str) -> str:
    return f"{what} {printable(whole)}"


def _parse_host(text: str, what: str, whole: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (host may be an IPv6 reference); return (host without brackets, port).

    ``what`` and ``whole`` (the kind of value and its full text) are only used in error messages.
    """
    port: int | None = None
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise SipParseError(f"unterminated IPv6 reference in {_where(what, whole)}")
        host = text[1:close]
        rest = text[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SipParseError(f"invalid IPv6 address in {_where(what, whole)}") from None
        if rest:
            if rest[0] != ":":
                raise SipParseError(f"unexpected text after IPv6 reference in {_where(what, whole)}")
            port = _parse_port(rest[1:], what, whole)
        return host, port
    host, sep, port_text = text.partition(":")
    if sep:
        port = _parse_port(port_text, what, whole)
    _check_hostname(host, what, whole)
    return host, port


#: Host names and IPv4 addresses already found valid (the same few peers send message after message);
#: bounded, emptied when full. Only valid hosts are kept, so an error is always reported.
_GOOD_HOSTS: Final[set[str]] = set()
_GOOD_HOSTS_MAX: Final = 4096


def _check_hostname(host: str, what: str, whole: str) -> None:
    if host in _GOOD_HOSTS:
        return
    _check_hostname_text(host, what, whole)
    if len(_GOOD_HOSTS) >= _GOOD_HOSTS_MAX:
        _GOOD_HOSTS.clear()
    _GOOD_HOSTS.add(host)


def _check_hostname_text(host: str, what: str, whole: str) -> None:
    if not host or len(host) > 255:
        raise SipParseError(f"missing or oversized host in {_where(what, whole)}")
    m = IPV4_RE.fullmatch(host)
    if m is not None:
        if any(int(octet) > 255 for octet in m.groups()):
            raise SipParseError(f"invalid IPv4 address {printable(host)} in {_where(what, whole)}")
        return
    if HOSTNAME_RE.fullmatch(host) is None:
        raise SipParseError(f"invalid host {printable(host)} in {_where(what, whole)}")


def _port_digits(text: str) -> bool:
    """One to five ASCII digits: the form of a port (its range is checked apart)."""
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def _parse_port(text: str, what: str, whole: str) -> int:
    if not _port_digits(text):
        raise SipParseError(f"invalid port {printable(text)} in {_where(what, whole)}")
    port = int(text)
    if port > 65535:
        raise SipParseError(f"port {port} out of range in {_where(what, whole)}")
    return port


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


#: Parameters without white space or quoted strings up to the end of the text (``;branch=z9hG4bK1;rport``):
#: the usual case, read with one match and splits; anything else goes through PARAM_RE one at a time.
#: The characters of a parameter value in the plain form: token characters, and the brackets and colons of an
#: IPv6 reference or a host:port (``received=[::1]``, ``maddr=10.0.0.1``).
_PLAIN_VALUE_ALPHABET: Final = TOKEN_ALPHABET + "[]:"


def parse_params(text: str, pos: int) -> tuple[Params, int]:
    """Read ``*( SEMI generic-param )`` from ``text[pos:]``.

    Names are lower-cased (parameter names are case-insensitive); values are kept as written,
    quotes included. Returns the parameters and the position after the last one.
    """
    n = len(text)
    plain = _plain_params(text, pos)
    if plain is not None:
        return plain, n
    params: Params = {}
    match = PARAM_RE.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            break
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
    return params, pos


def _plain_params(text: str, pos: int) -> Params | None:
    """The parameters when all of ``text[pos:]`` is ``*( ";" token [ "=" 1*value-char ] )`` (value characters:
    ``_PLAIN_VALUE_ALPHABET``), read by splitting instead of with a regular expression; None for anything else
    (quoted values, white space, empty or malformed parameters), which ``parse_params`` reads with ``PARAM_RE``."""
    plain: Params = {}
    if pos >= len(text):
        return plain
    if text[pos] != ";":
        return None
    for item in text[pos + 1:].split(";"):
        name, eq, value = item.partition("=")
        if not is_token(name):
            return None
        if not eq:
            plain[name.lower()] = None
        elif not made_of(value, _PLAIN_VALUE_ALPHABET):
            return None
        else:
            plain[name.lower()] = value
    return plain


def format_params(params: Params) -> str:
    # A loop rather than a generator inside join: compiled, a generator is an object of its own, resumed per item.
    parts: list[str] = []
    for k, v in params.items():
        parts.append(f";{k}" if v is None else f";{k}={v}")
    return "".join(parts)


def _rest_error(text: str, pos: int, what: str) -> SipParseError:
    rest = text[pos:].lstrip(" \t")
    if rest.startswith(";"):
        return SipParseError(f"empty or malformed parameter at {printable(rest)} in {_where(what, text)}")
    return SipParseError(f"unexpected text {printable(rest)} in {_where(what, text)}")


# --------------------------------------------------------------------------------------------------
# URIs
# --------------------------------------------------------------------------------------------------

#: Parsed URIs by their text (see SipURI.parse); bounded, emptied when full.
_URI_CACHE: Final[dict[str, SipURI]] = {}
_URI_CACHE_MAX: Final = 4096

# RFC 3261 §19.1.4: these URI parameters must match when present in either URI.
_MUST_MATCH_PARAMS: Final = ("user", "ttl", "method", "maddr", "transport")


#: The attributes ``SipURI.copy`` may change: its ``__slots__``, spelled once more because mypyc
#: (tools/compile_sip_core.py) refuses to read ``__slots__`` through the class.
_URI_FIELDS: Final = frozenset({"headers", "host", "opaque", "params", "password", "port", "scheme", "user"})


class SipURI:
    """A SIP, SIPS or tel URI (RFC 3261 §19.1, RFC 3966); other schemes are kept opaque.

    ``user``, ``password``, parameter and header values are stored unescaped; ``host`` carries no
    brackets for IPv6 (``host_text`` does). For a tel URI the number is ``user``. For any other
    scheme (``http:``, ``urn:``, ``isbn:``...) the text after the colon is ``opaque``.
    """

    __slots__ = ("headers", "host", "opaque", "params", "password", "port", "scheme", "user")

    def __init__(
        self,
        scheme: str = "sip",
        user: str | None = None,
        host: str = "",
        port: int | None = None,
        params: Params | None = None,
        headers: dict[str, str] | None = None,
        password: str | None = None,
        opaque: str | None = None,
    ) -> None:
        self.scheme = scheme.lower()
        self.user = user
        self.password = password
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.port = port
        self.params: Params = {} if params is None else params
        self.headers: dict[str, str] = {} if headers is None else headers
        self.opaque = opaque

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def host_text(self) -> str:
        """The host as written in a URI: IPv6 addresses in brackets."""
        return _host_text(self.host)

    @property
    def hostport(self) -> str:
        return self.host_text if self.port is None else f"{self.host_text}:{self.port}"

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True when the URI carries ``;lr`` (a loose router, RFC 3261 §19.1.1)."""
        return "lr" in self.params

    @classmethod
    def parse(cls, text: str) -> SipURI:
        """Parse an absolute URI; SIP/SIPS and tel URIs are fully decomposed and checked.

        The same URIs come back in message after message (a user's address of record, the gateway's
        own Contact, a phone's Contact), so the result of a successful parse is kept by its text and
        handed out as a fresh copy (the caller may change it). Errors are not kept.
        """
        hit = _URI_CACHE.get(text)
        if hit is not None:
            return hit._clone()
        uri = cls._parse_text(text)
        if len(_URI_CACHE) >= _URI_CACHE_MAX:
            _URI_CACHE.clear()
        _URI_CACHE[text] = uri._clone()
        return uri

    def _clone(self) -> SipURI:
        return SipURI(self.scheme, self.user, self.host, self.port, dict(self.params) if self.params else {},
                      dict(self.headers) if self.headers else {}, self.password, self.opaque)

    @classmethod
    def _parse_text(cls, text: str) -> SipURI:
        colon = text.find(":")
        if colon <= 0 or SCHEME_RE.fullmatch(text, 0, colon) is None:
            raise SipParseError(f"URI without a valid scheme: {printable(text)}")
        scheme = text[:colon].lower()
        rest = text[colon + 1 :]
        if not rest:
            raise SipParseError(f"empty URI after scheme: {printable(text)}")
        for ch in (" ", "\t", "<", ">", '"'):
            if ch in rest:
                raise SipParseError(f"character {ch!r} not allowed in URI {printable(text)}")
        if scheme in ("sip", "sips"):
            return cls._parse_sip(scheme, rest, text)
        if scheme == "tel":
            return cls._parse_tel(rest, text)
        return cls(scheme=scheme, opaque=rest)

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str, text: str) -> SipURI:
        # userinfo ends at the first "@": neither the user part nor anything after the host may
        # contain a bare "@" (it is escaped as %40), while "?" and ";" are legal in the user part
        # (user-unreserved), as RFC 4475 §3.1.1.2 shows.
        user = password = None
        at = rest.find("@")
        if at != -1:
            userinfo = rest[:at]
            rest = rest[at + 1 :]
            user_text, sep, pw_text = userinfo.partition(":")
            if not user_text or URI_USER_RE.fullmatch(user_text) is None:
                raise SipParseError(f"invalid user part in URI {printable(text)}")
            user = _unescape(user_text, "user part")
            if sep:
                if URI_PASSWORD_RE.fullmatch(pw_text) is None:
                    raise SipParseError(f"invalid password in URI {printable(text)}")
                password = _unescape(pw_text, "password")
        headers_text = None
        q = rest.find("?")
        if q != -1:
            headers_text = rest[q + 1 :]
            rest = rest[:q]
        semi = rest.find(";")
        hostport = rest if semi == -1 else rest[:semi]
        host, port = _parse_host(hostport, "URI", text)
        params: Params = {}
        if semi != -1:
            for item in rest[semi + 1 :].split(";"):
                name, eq, value = item.partition("=")
                if not name or URI_PARAM_CHARS_RE.fullmatch(name) is None:
                    raise SipParseError(f"empty or invalid parameter in URI {printable(text)}")
                if eq and (not value or URI_PARAM_CHARS_RE.fullmatch(value) is None):
                    raise SipParseError(f"invalid parameter value in URI {printable(text)}")
                params[_unescape(name, "parameter").lower()] = _unescape(value, "parameter") if eq else None
        headers: dict[str, str] = {}
        if headers_text is not None:
            for item in headers_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq or URI_HEADER_CHARS_RE.fullmatch(item.replace("=", "", 1)) is None:
                    raise SipParseError(f"invalid header component in URI {printable(text)}")
                headers[_unescape(name, "header")] = _unescape(value, "header")
        return cls(scheme, user, host, port, params, headers, password)

    @classmethod
    def _parse_tel(cls, rest: str, text: str) -> SipURI:
        # telephone-subscriber = global-number / local-number, then ";par" (RFC 3966 §3)
        number, _, param_text = rest.partition(";")
        if not number or URI_PARAM_CHARS_RE.fullmatch(number) is None:
            raise SipParseError(f"invalid number in tel URI {printable(text)}")
        params: Params = {}
        if param_text:
            for item in param_text.split(";"):
                name, eq, value = item.partition("=")
                if not name or URI_PARAM_CHARS_RE.fullmatch(name) is None:
                    raise SipParseError(f"invalid parameter in tel URI {printable(text)}")
                params[name.lower()] = _unescape(value, "parameter") if eq else None
        return cls("tel", _unescape(number, "number"), params=params)

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            return f"tel:{_escape(self.user or '', _SAFE_PARAM)}{self._params_text()}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _SAFE_USER))
            if self.password is not None:
                out += [":", _escape(self.password, _SAFE_PASSWORD)]
            out.append("@")
        out.append(self.hostport)
        out.append(self._params_text())
        if self.headers:
            out.append("?")
            out.append(
                "&".join(f"{_escape(k, _SAFE_HEADER)}={_escape(v, _SAFE_HEADER)}" for k, v in self.headers.items())
            )
        return "".join(out)

    def _params_text(self) -> str:
        return "".join(
            f";{_escape(k, _SAFE_PARAM)}" if v is None else f";{_escape(k, _SAFE_PARAM)}={_escape(v, _SAFE_PARAM)}"
            for k, v in self.params.items()
        )

    def __repr__(self) -> str:
        return f"SipURI({str(self)!r})"

    def copy(self, **changes: object) -> SipURI:
        """A new URI with some attributes replaced (params/headers dicts are copied)."""
        new = self._clone()
        for name, value in changes.items():
            if name not in _URI_FIELDS:
                raise TypeError(f"SipURI has no attribute {name!r}")
            setattr(new, name, value)
        return new

    def __eq__(self, other: object) -> bool:
        """URI equality of RFC 3261 §19.1.4 (user case-sensitive, host case-insensitive, ...)."""
        if not isinstance(other, SipURI):
            return NotImplemented
        if self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        if self.scheme == "tel":
            return self.user == other.user and self.params == other.params
        if (
            self.user != other.user
            or self.password != other.password
            or self.host.lower() != other.host.lower()
            or self.port != other.port
        ):
            return False
        a, b = self.params, other.params
        for name in _MUST_MATCH_PARAMS:
            va, vb = a.get(name), b.get(name)
            if (va is None) != (vb is None) or (va is not None and vb is not None and va.lower() != vb.lower()):
                return False
        for name in a.keys() & b.keys():
            va, vb = a[name], b[name]
            if (va or "").lower() != (vb or "").lower():
                return False
        ha = {k.lower(): v for k, v in self.headers.items()}
        hb = {k.lower(): v for k, v in other.headers.items()}
        return ha == hb

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.host.lower(), self.port, self.opaque))


# --------------------------------------------------------------------------------------------------
# name-addr / addr-spec (From, To, Contact, Route, Record-Route, Refer-To, P-Asserted-Identity...)
# --------------------------------------------------------------------------------------------------


def _unquote_display(inner: str) -> str:
    if "\\" not in inner:
        return inner
    out = []
    i, n = 0, len(inner)
    while i < n:
        ch = inner[i]
        if ch == "\\" and i + 1 < n:
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _quote_display(display: str) -> str:
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scan_quoted(text: str, i: int) -> int:
    """Index just past the closing quote of the quoted-string starting at ``text[i] == '"'``."""
    n = len(text)
    j = i + 1
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == '"':
            return j + 1
        j += 1
    return -1


#: Parsed name-addr values by their text (see NameAddr.parse); bounded, emptied when full.
_NAME_ADDR_CACHE: Final[dict[str, NameAddr]] = {}
_NAME_ADDR_CACHE_MAX: Final = 4096


class NameAddr:
    """``[display] <uri>;params`` or ``uri;params`` (RFC 3261 §20.10, §25.1 name-addr / addr-spec).

    ``display`` is unquoted (escapes undone); ``params`` are the header parameters (``tag``,
    ``expires``, ``q``...), names lower-cased, values as written.
    """

    __slots__ = ("display", "params", "uri")

    def __init__(self, uri: SipURI, display: str | None = None, params: Params | None = None) -> None:
        self.uri = uri
        self.display = display
        self.params: Params = {} if params is None else params

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter of a Contact, or None when absent or not a number."""
        value = self.params.get("expires")
        if value is None or not (value.isascii() and value.isdigit()) or len(value) > 10:
            return None
        return int(value)

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with ``;tag=`` set (used for the To tag of a UAS response)."""
        if TOKEN_RE.fullmatch(tag) is None:
            raise ValueError(f"a tag is a token (RFC 3261 §19.3): {tag!r}")
        params = dict(self.params)
        params["tag"] = tag
        return NameAddr(self.uri, self.display, params)

    def copy(self) -> NameAddr:
        return NameAddr(self.uri.copy(), self.display, dict(self.params))

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse a name-addr or addr-spec with its parameters.

        From and To come back unchanged in every message of a transaction and dialog (and a user's address of
        record in every REGISTER), so, as for SipURI.parse, a successful parse is kept by its text and handed
        out as a fresh copy; errors are not kept.
        """
        hit = _NAME_ADDR_CACHE.get(text)
        if hit is not None:
            uri = hit.uri._clone()
            return cls(uri, hit.display, dict(hit.params) if hit.params else {})
        parsed = cls._parse_text(text)
        if len(_NAME_ADDR_CACHE) >= _NAME_ADDR_CACHE_MAX:
            _NAME_ADDR_CACHE.clear()
        _NAME_ADDR_CACHE[text] = cls(parsed.uri._clone(), parsed.display, dict(parsed.params))
        return parsed

    @classmethod
    def _parse_text(cls, text: str) -> NameAddr:
        n = len(text)
        i = 0
        while i < n and text[i] in " \t":
            i += 1
        if i == n:
            raise SipParseError("empty address (name-addr or addr-spec expected)")
        display: str | None = None
        if text[i] == '"':
            end = _scan_quoted(text, i)
            if end == -1:
                raise SipParseError(f"unterminated quoted display name in {printable(text)}")
            display = _unquote_display(text[i + 1 : end - 1])
            i = end
            while i < n and text[i] in " \t":
                i += 1
            if i == n or text[i] != "<":
                raise SipParseError(f"quoted display name not followed by <URI> in {printable(text)}")
            lt = i
        else:
            lt = text.find("<", i)
            semi = text.find(";", i)
            if lt != -1 and (semi == -1 or lt < semi):
                name = text[i:lt].rstrip(" \t")
                if name:
                    if DISPLAY_TOKENS_RE.fullmatch(name) is None:
                        raise SipParseError(
                            f"display name {printable(name)} has characters that require quotes"
                        )
                    display = name
            else:
                lt = -1
        if lt != -1:
            gt = text.find(">", lt + 1)
            if gt == -1:
                raise SipParseError(f"missing '>' in {printable(text)}")
            uri_text = text[lt + 1 : gt]
            if uri_text != uri_text.strip(" \t"):
                raise SipParseError(f"spaces inside <...> around the URI in {printable(text)}")
            uri = SipURI.parse(uri_text)
            pos = gt + 1
        else:
            # addr-spec: RFC 3261 §20.10 -- without <>, everything after the first ";" is a header
            # parameter, and a URI containing "," "?" or ";" must be enclosed in <>.
            end = semi if semi != -1 else n
            uri_text = text[i:end].rstrip(" \t")
            for ch in (",", "?"):
                if ch in uri_text:
                    raise SipParseError(
                        f"URI containing {ch!r} must be enclosed in <> (RFC 3261 §20.10): {printable(uri_text)}"
                    )
            uri = SipURI.parse(uri_text)
            pos = end
        params, pos = parse_params(text, pos)
        if text[pos:].strip(" \t"):
            raise _rest_error(text, pos, "address")
        return cls(uri, display, params)

    def __str__(self) -> str:
        uri = str(self.uri)
        head = f"<{uri}>" if self.display is None else f"{_quote_display(self.display)} <{uri}>"
        return head + format_params(self.params)

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        return self.uri == other.uri and self.display == other.display and self.params == other.params

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------------
# Via and CSeq
# --------------------------------------------------------------------------------------------------


#: Parsed Via values by their text (see Via.parse); bounded, emptied when full.
_VIA_CACHE: Final[dict[str, Via]] = {}
_VIA_CACHE_MAX: Final = 4096


def remember_via(text: str, via: Via) -> None:
    """Keep ``via`` (a copy) as what ``text`` parses to: the endpoint builds its own Via values and knows them."""
    if len(_VIA_CACHE) >= _VIA_CACHE_MAX:
        _VIA_CACHE.clear()
    _VIA_CACHE[text] = via.copy()


class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 §20.42)."""

    __slots__ = ("host", "params", "port", "protocol", "transport")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params | None = None,
        protocol: str = "SIP/2.0",
    ) -> None:
        self.transport = transport.upper()
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.port = port
        self.params: Params = {} if params is None else params
        self.protocol = protocol

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | bool | None:
        """None when absent, True when present without a value (RFC 3581 request), else the port."""
        if "rport" not in self.params:
            return None
        value = self.params["rport"]
        if value is None or not (value.isascii() and value.isdigit()) or len(value) > 5:
            return True
        return int(value)

    @property
    def sent_by(self) -> str:
        host = _host_text(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via value. A response brings back the Via its request was sent with, and a retransmission
        its own: a successful parse is kept by its text (bounded) and handed out as a copy."""
        hit = _VIA_CACHE.get(text)
        if hit is not None:
            return hit.copy()
        via = cls._parse_text(text)
        remember_via(text, via)
        return via

    def copy(self) -> Via:
        return Via(self.transport, self.host, self.port, dict(self.params), self.protocol)

    @classmethod
    def _parse_text(cls, text: str) -> Via:
        via = cls._parse_usual(text)
        if via is not None:
            return via
        m = VIA_SENT_RE.match(text)
        if m is None:
            raise SipParseError(f"malformed Via {printable(text)}: expected SIP/2.0/<transport> <host>")
        name, version, transport, host, port_text = m.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise SipParseError(f"Via protocol {name}/{version} is not SIP/2.0")
        if host.startswith("["):
            host, _ = _parse_host(host, "Via", text)
        else:
            _check_hostname(host, "Via", text)
        port = _parse_port(port_text, "Via", text) if port_text is not None else None
        params, pos = parse_params(text, m.end())
        if pos != len(text) and text[pos:].strip(" \t"):
            raise _rest_error(text, pos, "Via")
        return cls(transport, host, port, params, f"{name.upper()}/{version}")

    @classmethod
    def _parse_usual(cls, text: str) -> Via | None:
        """The usual form without the regex: ``SIP/2.0/<letters> <known host>[:<port>]`` with single spaces and
        no white space before the parameters, a host already found valid (``_GOOD_HOSTS``) and no IPv6
        reference. None for anything else, which the full parse reads (and reports)."""
        if not text.startswith("SIP/2.0/"):
            return None
        space = text.find(" ", 8)
        transport = text[8:space]
        if space < 9 or not (transport.isalnum() and transport.isascii()):
            return None
        semi = text.find(";", space)
        end = len(text) if semi == -1 else semi
        host, colon, port_text = text[space + 1:end].partition(":")
        if host not in _GOOD_HOSTS:
            return None
        port: int | None = None
        if colon:
            if not _port_digits(port_text):
                return None
            port = int(port_text)
            if port > 65535:
                return None
        params, pos = parse_params(text, end)
        if pos != len(text):
            return None
        return cls(transport, host, port, params, "SIP/2.0")

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Via):
            return NotImplemented
        return (
            self.transport == other.transport
            and self.host.lower() == other.host.lower()
            and self.port == other.port
            and self.params == other.params
        )

    __hash__ = None  # type: ignore[assignment]


#: Parsed CSeq values by their text (see CSeq.parse); bounded, emptied when full.
_CSEQ_CACHE: Final[dict[str, CSeq]] = {}
_CSEQ_CACHE_MAX: Final = 1024


class CSeq(NamedTuple):
    """``CSeq: 4711 INVITE`` (RFC 3261 §20.16)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        return parse_cseq_text(text)

    @classmethod
    def _parse_text(cls, text: str) -> CSeq:
        text = text.strip(" \t")
        # The usual form, "<digits> <METHOD>" with one space and a method of letters, without the regex.
        space = text.find(" ")
        if 0 < space <= 10:
            digits, method = text[:space], text[space + 1:]
            if digits.isdigit() and digits.isascii() and method.isalpha() and method.isascii():
                seq = int(digits)
                if seq <= MAX_CSEQ:
                    return cls(seq, method)
        m = CSEQ_RE.fullmatch(text)
        if m is None:
            raise SipParseError(f"malformed CSeq {printable(text)}: expected <number> <method>")
        digits = m.group(1)
        if len(digits) > 10 or int(digits) > MAX_CSEQ:
            raise SipParseError(f"CSeq number {printable(digits, 24)} exceeds 2**32-1")
        return cls(int(digits), m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq_text(text: str) -> CSeq:
    """``CSeq.parse``, as a module function: the compiled core calls it directly (a NamedTuple's classmethod is
    called through the interpreter's method call). A CSeq is an immutable tuple and its texts repeat ("1 INVITE",
    "2 BYE"): a parse is kept by its text, bounded, and handed out as it is."""
    hit = _CSEQ_CACHE.get(text)
    if hit is not None:
        return hit
    cseq = CSeq._parse_text(text)
    if len(_CSEQ_CACHE) >= _CSEQ_CACHE_MAX:
        _CSEQ_CACHE.clear()
    _CSEQ_CACHE[text] = cseq
    return cseq
