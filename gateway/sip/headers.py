"""SIP header names and the ordered header multi-map.

The table below is the one place that knows header names: the canonical spelling, the compact form
(RFC 3261 §7.3.3 and the extensions registered with IANA) and whether the header's grammar is a
comma-separated list (so that several values may share one field, RFC 3261 §7.3.1).

Header values are kept as raw text, exactly as received after unfolding; they are parsed only when
someone asks (see the properties of :class:`gateway.sip.message.Request`), which keeps the headers a
B2BUA only copies free of any parsing cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, TypeVar

from gateway.sip.abnf import TOKEN_RE

__all__ = [
    "COMPACT_FORMS",
    "HEADER_TABLE",
    "LIST_HEADERS",
    "HeaderSpec",
    "Headers",
    "canonical_name",
    "header_key",
    "split_list",
]

T = TypeVar("T")


class HeaderSpec:
    """One row of the header table."""

    __slots__ = ("compact", "is_list", "name")

    def __init__(self, name: str, compact: str | None = None, is_list: bool = False) -> None:
        self.name = name
        self.compact = compact
        self.is_list = is_list

    def __repr__(self) -> str:
        return f"HeaderSpec({self.name!r}, compact={self.compact!r}, is_list={self.is_list})"


def _h(name: str, compact: str | None = None, *, is_list: bool = False) -> HeaderSpec:
    return HeaderSpec(name, compact, is_list)


# Canonical spelling, compact form and list-ness of known headers: RFC 3261 §20 and the IANA "Header
# Fields" registry of the SIP parameters. is_list is True only where the header's ABNF is
# ``value *(COMMA value)``. Headers whose values contain commas that do not separate values
# (WWW-Authenticate, Authorization, Proxy-Authenticate, Proxy-Authorization, Authentication-Info,
# Date, Retry-After, Subject...) are not lists and are never split.
HEADER_TABLE: tuple[HeaderSpec, ...] = (
    _h("Accept", is_list=True),
    _h("Accept-Contact", "a", is_list=True),  # RFC 3841
    _h("Accept-Encoding", is_list=True),
    _h("Accept-Language", is_list=True),
    _h("Accept-Resource-Priority", is_list=True),  # RFC 4412
    _h("Alert-Info", is_list=True),
    _h("Allow", is_list=True),
    _h("Allow-Events", "u", is_list=True),  # RFC 6665
    _h("Answer-Mode"),  # RFC 5373
    _h("Authentication-Info"),
    _h("Authorization"),
    _h("Call-ID", "i"),
    _h("Call-Info", is_list=True),
    _h("Contact", "m", is_list=True),
    _h("Content-Disposition"),
    _h("Content-Encoding", "e", is_list=True),
    _h("Content-ID"),  # RFC 8262
    _h("Content-Language", is_list=True),
    _h("Content-Length", "l"),
    _h("Content-Type", "c"),
    _h("CSeq"),
    _h("Date"),
    _h("Error-Info", is_list=True),
    _h("Event", "o"),  # RFC 6665
    _h("Expires"),
    _h("Feature-Caps", is_list=True),  # RFC 6809
    _h("Flow-Timer"),  # RFC 5626
    _h("From", "f"),
    _h("Geolocation", is_list=True),  # RFC 6442
    _h("Geolocation-Error"),
    _h("Geolocation-Routing"),
    _h("History-Info", is_list=True),  # RFC 7044
    _h("Identity", "y"),  # RFC 8224
    _h("Identity-Info", "n"),  # RFC 4474 (obsolete, compact form still registered)
    _h("In-Reply-To", is_list=True),
    _h("Info-Package"),  # RFC 6086
    _h("Join"),  # RFC 3911
    _h("Max-Breadth"),  # RFC 5393
    _h("Max-Forwards"),
    _h("MIME-Version"),
    _h("Min-Expires"),
    _h("Min-SE"),  # RFC 4028
    _h("Organization"),
    _h("P-Access-Network-Info", is_list=True),
    _h("P-Asserted-Identity", is_list=True),  # RFC 3325
    _h("P-Associated-URI", is_list=True),
    _h("P-Called-Party-ID"),
    _h("P-Charging-Function-Addresses", is_list=True),
    _h("P-Charging-Vector"),
    _h("P-Early-Media", is_list=True),  # RFC 5009
    _h("P-Preferred-Identity", is_list=True),
    _h("P-Visited-Network-ID", is_list=True),
    _h("Path", is_list=True),  # RFC 3327
    _h("Permission-Missing", is_list=True),
    _h("Priority"),
    _h("Privacy"),  # RFC 3323: values separated by ";", not commas
    _h("Proxy-Authenticate"),
    _h("Proxy-Authorization"),
    _h("Proxy-Require", is_list=True),
    _h("RAck"),  # RFC 3262
    _h("Reason", is_list=True),  # RFC 3326
    _h("Recv-Info", is_list=True),  # RFC 6086
    _h("Record-Route", is_list=True),
    _h("Refer-Sub"),  # RFC 4488
    _h("Refer-To", "r"),  # RFC 3515
    _h("Referred-By", "b"),  # RFC 3892
    _h("Reject-Contact", "j", is_list=True),  # RFC 3841
    _h("Replaces"),  # RFC 3891
    _h("Reply-To"),
    _h("Request-Disposition", "d", is_list=True),  # RFC 3841
    _h("Require", is_list=True),
    _h("Resource-Priority", is_list=True),  # RFC 4412
    _h("Retry-After"),
    _h("Route", is_list=True),
    _h("RSeq"),  # RFC 3262
    _h("Security-Client", is_list=True),  # RFC 3329
    _h("Security-Server", is_list=True),
    _h("Security-Verify", is_list=True),
    _h("Server"),
    _h("Service-Route", is_list=True),  # RFC 3608
    _h("Session-Expires", "x"),  # RFC 4028
    _h("Session-ID"),  # RFC 7989
    _h("SIP-ETag"),  # RFC 3903
    _h("SIP-If-Match"),
    _h("Subject", "s"),
    _h("Subscription-State"),
    _h("Supported", "k", is_list=True),
    _h("Suppress-If-Match"),  # RFC 5839
    _h("Target-Dialog"),  # RFC 4538
    _h("Timestamp"),
    _h("To", "t"),
    _h("Trigger-Consent", is_list=True),
    _h("Unsupported", is_list=True),
    _h("User-Agent"),
    _h("User-to-User", is_list=True),  # RFC 7433
    _h("Via", "v", is_list=True),
    _h("Warning", is_list=True),
    _h("WWW-Authenticate"),
)

#: compact form (lower case) -> canonical name
COMPACT_FORMS: dict[str, str] = {spec.compact: spec.name for spec in HEADER_TABLE if spec.compact}

# lower-cased name or compact form -> (key, canonical spelling). The key is the lower-cased
# canonical name, used for every comparison.
_KNOWN: Final[dict[str, tuple[str, str]]] = {}
for _spec in HEADER_TABLE:
    _KNOWN[_spec.name.lower()] = (_spec.name.lower(), _spec.name)
    if _spec.compact:
        _KNOWN[_spec.compact] = (_spec.name.lower(), _spec.name)
del _spec

#: keys (lower-cased canonical names) of the comma-list headers
LIST_HEADERS: Final[frozenset[str]] = frozenset(spec.name.lower() for spec in HEADER_TABLE if spec.is_list)

#: Memo slots (see Headers._memo) by the key of the header each is parsed from.
_MEMO_SLOTS: Final[dict[str, tuple[str, ...]]] = {
    "via": ("top_via", "vias"), "from": ("from",), "to": ("to",), "cseq": ("cseq",), "contact": ("contact",),
    "route": ("route",), "record-route": ("record_route",), "max-forwards": ("max_forwards",),
    "expires": ("expires",),
}
#: What ``Headers._memo`` finds for a slot not computed yet (None is a value some views have).
_ABSENT: Final = object()
_KNOWN_SLOTS: Final = frozenset(slot for slots in _MEMO_SLOTS.values() for slot in slots)

# Exact spelling as seen on the wire -> (key, canonical). Bounded so that a peer sending random
# header names cannot grow it without limit.
_SPELLING_CACHE: Final[dict[str, tuple[str, str]]] = {}
_SPELLING_CACHE_MAX: Final = 2048


def _lookup(name: str) -> tuple[str, str] | None:
    """(key, canonical name) for a header name as written, or None if it is not a token."""
    hit = _SPELLING_CACHE.get(name)
    if hit is not None:
        return hit
    stripped = name.rstrip(" \t")
    if TOKEN_RE.fullmatch(stripped) is None:
        return None
    lower = stripped.lower()
    info = _KNOWN.get(lower)
    if info is None:
        # Unknown (extension) header: compared case-insensitively, written as first seen.
        info = (lower, stripped)
    if len(_SPELLING_CACHE) < _SPELLING_CACHE_MAX:
        _SPELLING_CACHE[name] = info
    return info


def header_key(name: str) -> str:
    """The comparison key of a header name: the lower-cased canonical name (compact forms expanded)."""
    info = _lookup(name)
    if info is None:
        raise ValueError(f"invalid header name {name!r}: a header name is a token (RFC 3261 §25.1)")
    return info[0]


def canonical_name(name: str) -> str:
    """``"v"`` -> ``"Via"``, ``"call-id"`` -> ``"Call-ID"``; unknown names are returned as given."""
    info = _lookup(name)
    if info is None:
        raise ValueError(f"invalid header name {name!r}: a header name is a token (RFC 3261 §25.1)")
    return info[1]


# One element of a comma-separated list: runs of ordinary characters, quoted strings (which may hide
# commas) and <...> URIs (which may too). An unterminated quote or bracket extends to the end.
_LIST_ELEMENT_RE: Final = re.compile(r'(?:[^",<]+|"(?:[^"\\]|\\.)*"?|<[^>]*>?)+', re.DOTALL)


def split_list(value: str) -> list[str]:
    """Split a header value on top-level commas (not inside quotes or ``<...>``); drop empty items."""
    if "," not in value:
        value = value.strip(" \t")
        return [value] if value else []
    plain = '"' not in value and "<" not in value
    parts = value.split(",") if plain else _LIST_ELEMENT_RE.findall(value)
    out = []
    for part in parts:
        part = part.strip(" \t")
        if part:
            out.append(part)
    return out


def _check_value(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"value of header {name} must be str, not {type(value).__name__}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"value of header {name} contains a line break: {value!r}")
    return value.strip(" \t")


class Headers:
    """Ordered multi-map of header fields.

    Names are matched case-insensitively with compact forms expanded; values are raw text. Each
    field keeps its position, so serialising reproduces the order received (RFC 3261 §7.3.1: the
    relative order of fields with the same name matters).

    The object is mutable so that builders can assemble headers; messages that own a Headers are
    treated as immutable. Parsed values (Via, CSeq...) are memoised here and forgotten on any change.
    """

    __slots__ = ("_cache", "_fields")

    def __init__(self, fields: Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._fields: list[tuple[str, str, str]] = []
        self._cache: dict[str, Any] | None = None
        if fields is None:
            return
        if isinstance(fields, Headers):
            self._fields = list(fields._fields)
            return
        # A list of pairs (the usual input) before the Mapping check, which goes through the ABC machinery.
        pairs = fields if isinstance(fields, list) else fields.items() if isinstance(fields, Mapping) else fields
        for name, value in pairs:
            self.add(name, value)

    @classmethod
    def _from_fields(cls, fields: list[tuple[str, str, str]]) -> Headers:
        """Adopt (key, name, value) triples produced by the parser, without re-checking them."""
        obj = Headers()  # not cls(): the compiled build calls its constructor directly (no subclass exists)
        obj._fields = fields
        return obj

    # -- reading ---------------------------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field value of ``name`` (not split), or ``default``."""
        key = _SPELLING_CACHE.get(name)
        k = key[0] if key is not None else header_key(name)
        for fkey, _, value in self._fields:
            if fkey == k:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; comma-list headers are split into their elements."""
        key = _SPELLING_CACHE.get(name)
        k = key[0] if key is not None else header_key(name)
        values = [value for fkey, _, value in self._fields if fkey == k]
        if k in LIST_HEADERS:
            out: list[str] = []
            for value in values:
                out.extend(split_list(value))
            return out
        return values

    def get_fields(self, name: str) -> list[str]:
        """Every field value of ``name`` as written (one entry per header line, never split)."""
        k = header_key(name)
        return [value for fkey, _, value in self._fields if fkey == k]

    def count(self, name: str) -> int:
        """How many header fields (lines) named ``name`` there are."""
        k = header_key(name)
        return sum(1 for fkey, _, _ in self._fields if fkey == k)

    def items(self) -> list[tuple[str, str]]:
        """(canonical name, raw value) of every field, in order."""
        return [(name, value) for _, name, value in self._fields]

    def items_of(self, keys: frozenset[str] | set[str]) -> list[tuple[str, str]]:
        """(canonical name, raw value) of the fields whose key (``header_key`` of the name) is in ``keys``, in
        order: what a B2BUA relays from one leg to the other, picked in one pass."""
        return [(name, value) for key, name, value in self._fields if key in keys]

    def keys(self) -> list[str]:
        """Canonical names of every field, in order (repeated names repeat)."""
        return [name for _, name, _ in self._fields]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._fields:
            yield name, value

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            return self.get(name) is not None
        except ValueError:  # not a header name: no such field
            return False

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [(k, v) for k, _, v in other._fields]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def copy(self) -> Headers:
        """An independent copy. What was parsed already is carried over: the parsed values are treated
        as immutable everywhere (messages are rebuilt, never edited in place)."""
        obj = Headers._from_fields(list(self._fields))
        if self._cache:
            obj._cache = dict(self._cache)
        return obj

    # -- changing --------------------------------------------------------------------------------

    def _entry(self, name: str, value: str) -> tuple[str, str, str]:
        info = _lookup(name)
        if info is None:
            raise ValueError(f"invalid header name {name!r}: a header name is a token (RFC 3261 §25.1)")
        return (info[0], info[1], _check_value(info[1], value))

    def add(self, name: str, value: str) -> None:
        """Append a field at the end."""
        entry = self._entry(name, value)
        self._fields.append(entry)
        self._forget(entry[0])

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before the first field of the same name (at the top if there is none).

        This is how a new top Via or Record-Route is added (RFC 3261 §16.6 steps 4 and 8).
        """
        entry = self._entry(name, value)
        for i, (fkey, _, _) in enumerate(self._fields):
            if fkey == entry[0]:
                self._fields.insert(i, entry)
                break
        else:
            self._fields.insert(0, entry)
        self._forget(entry[0])

    def set(self, name: str, value: str) -> None:
        """Replace every field of ``name`` by one field, kept at the position of the first."""
        entry = self._entry(name, value)
        out: list[tuple[str, str, str]] = []
        placed = False
        for field in self._fields:
            if field[0] == entry[0]:
                if not placed:
                    out.append(entry)
                    placed = True
            else:
                out.append(field)
        if not placed:
            out.append(entry)
        self._fields = out
        self._forget(entry[0])

    def remove(self, name: str) -> int:
        """Remove every field of ``name``; return how many there were."""
        k = header_key(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if f[0] != k]
        self._forget(k)
        return before - len(self._fields)

    def remove_first(self, name: str) -> str | None:
        """Remove the first value of ``name`` and return it.

        For comma-list headers only the first element goes: ``Via: a, b`` becomes ``Via: b`` (how a
        proxy removes its own Via from a response, RFC 3261 §16.7 step 3).
        """
        k = header_key(name)
        for i, (fkey, fname, value) in enumerate(self._fields):
            if fkey != k:
                continue
            self._forget(k)
            if k in LIST_HEADERS:
                parts = split_list(value)
                if len(parts) > 1:
                    self._fields[i] = (fkey, fname, ", ".join(parts[1:]))
                    return parts[0]
            del self._fields[i]
            return value
        return None

    # -- memoised parsing ------------------------------------------------------------------------

    def _forget(self, key: str) -> None:
        """Drop what was parsed from header ``key`` (a change to other headers keeps the rest)."""
        cache = self._cache
        if cache:
            slots = _MEMO_SLOTS.get(key)
            if slots is not None:
                for slot in slots:
                    if slot in cache:
                        del cache[slot]
            for slot in cache:
                if slot not in _KNOWN_SLOTS:  # a slot of unknown origin: any change may affect it
                    for unknown in [s for s in cache if s not in _KNOWN_SLOTS]:
                        del cache[unknown]
                    break

    def _forget_all(self) -> None:
        """Drop everything parsed (the fields stay; each view is parsed again when asked for)."""
        self._cache = None

    def _memo(self, slot: str, parse: Callable[[Headers], T]) -> T:
        """Return ``parse(self)``, computed once until the headers change. Errors are not cached.

        A slot listed in ``_MEMO_SLOTS`` is forgotten when the header it is parsed from changes; any
        other slot when any header changes."""
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        else:
            hit = cache.get(slot, _ABSENT)  # one lookup (a view may be None: Max-Forwards, Expires)
            if hit is not _ABSENT:
                return hit  # type: ignore[no-any-return]
        value = parse(self)
        cache[slot] = value
        return value

    def _remember(self, slot: str, value: object) -> None:
        """Store a value the parser already computed (so the property does not parse again)."""
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        cache[slot] = value
