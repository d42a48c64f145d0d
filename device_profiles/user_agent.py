"""Vendor, model and firmware from a SIP ``User-Agent``/``Server`` header or an HTTP User-Agent.

Detection is a table of patterns with priorities (:data:`RULES`, defined in
:mod:`device_profiles.ua_rules`), not a chain of ifs: every rule whose header source fits is tried, each hit
becomes a :class:`UAMatch`, and the hits are ordered by priority (then by table order). The best one is
what :func:`parse_user_agent` returns; :func:`match_all` returns them all, best first.

What a match reports:

* ``model`` is normalised to the way the catalogue writes models (``8851``, ``ATA191-MPP``, ``VVX 400``,
  ``Trio 8800``, ``Edge E450``, ``Rove B4``, ``OBi 300``, ``T46S``, ``C450HD``, ``MP114-FXS``,
  ``IP-DECT Server 400``, ``IPBS``, ``N870 IP PRO``, ``8180g2``, ``eSIM``). Normalisation only changes
  spelling -- separators, case, a vendor prefix, a hardware revision suffix (AudioCodes ``-Rev0``) -- and
  never maps one product onto another: ``440HDG`` stays ``440HDG`` although the catalogue lists ``440HD``
  and ``445HDG``; deciding that it is unknown, with the closest names, is the catalogue's job. A model the
  catalogue does not have (``W75DM``, ``Mediant 1000B``) is still reported with its vendor.
* ``firmware`` is the version token as the device wrote it (``11-1-0MSR3-9``, ``66.86.0.15``,
  ``83.V2.11.0+build.a546b91``, ``PCS22Ab``); only a version *marker* that is not part of the token is
  dropped (AudioCodes gateways write ``v.6.60A.367.001``). It is ``None`` when the string carries no
  application version: a Poly ``Type/Updater`` fetch reports the updater's own version, not the
  application's (:mod:`device_profiles.firmware` interprets the token by vendor scheme).
* ``family`` is the rule's family tag (``cisco-mpp``, ``cisco-enterprise``, ``audiocodes-sip``,
  ``audiocodes-sfb``, ``poly-ucs``, ``obi`` ...): the firmware line the string proves, independent of the
  version number.
* ``mac`` is twelve lower-case hex digits when the string carries a MAC address (Cisco MPP, Poly with
  ``sec.tagSerialNo``, Yealink, AudioCodes, Gigaset), else ``None``. Serial numbers are never reported as
  MACs.

Input is untrusted network data. Nothing here raises on any text: the value is cut to
:data:`MAX_INPUT_CHARS` before any matching, control characters and header folding (RFC 3261 §7.3.1) become
single spaces, a leading ``User-Agent:``/``Server:`` header name is removed, and every pattern is linear
(see :mod:`device_profiles.ua_rules`). Unknown strings give ``None``; the verdict layer turns that into
``unknown_model``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from device_profiles.ua_rules import CONFIDENCES, RULES, SOURCES, VENDORS, UARule

__all__ = [
    "MAX_INPUT_CHARS",
    "NORMALISERS",
    "RULES",
    "RuleRow",
    "UAMatch",
    "UARule",
    "clean_user_agent",
    "describe_rules",
    "match_all",
    "normalise_mac",
    "parse_user_agent",
]

logger = logging.getLogger(__name__)

#: Longest header value looked at. Real User-Agents are well under 200 characters; anything longer is cut,
#: which bounds the work per call whatever a peer sends.
MAX_INPUT_CHARS = 1024

#: Named groups a rule may use; anything else is ignored (e.g. a serial number kept for readability).
_MODEL_GROUP = "model"
_FIRMWARE_GROUP = "firmware"
_MAC_GROUPS = ("mac", "mac_alt")


@dataclass(frozen=True)
class UAMatch:
    """One way of reading a User-Agent: which rule matched and what it says about the device."""

    vendor: str
    model: str
    firmware: str | None
    family: str | None
    mac: str | None
    rule: str
    priority: int
    confidence: str
    source: str


class RuleRow(NamedTuple):
    """One rule, for documentation tables."""

    name: str
    vendor: str
    priority: int
    confidence: str
    example: str


# --------------------------------------------------------------------------------------------- cleaning

_HEADER_NAME = re.compile(r"^(?:user-agent|server)[ \t]*:[ \t]*", re.IGNORECASE)
_CONTROL_OR_SPACE_RUN = re.compile(r"[\x00-\x20\x7f]+")


def clean_user_agent(text: object) -> str:
    """The header value the rules see: bounded, unfolded, single-spaced, without a header name.

    Accepts ``str`` or ``bytes`` (decoded as UTF-8, undecodable bytes replaced); anything else is treated
    as an empty value.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text[: MAX_INPUT_CHARS * 4]).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return ""
    value = text[:MAX_INPUT_CHARS]
    # RFC 3261 §7.3.1: a header may be folded over lines (CRLF followed by white space); its value is the
    # same as with one space. Tabs, stray CR/LF and other controls are treated the same way.
    value = _CONTROL_OR_SPACE_RUN.sub(" ", value).strip()
    value = _HEADER_NAME.sub("", value, count=1)
    return value


def normalise_mac(text: str | None) -> str | None:
    """Twelve lower-case hex digits, or ``None`` if ``text`` is not a MAC address (with or without ``:``/``-``)."""
    if not text:
        return None
    digits = re.sub(r"[:\-]", "", text)
    if len(digits) != 12 or not re.fullmatch(r"[0-9A-Fa-f]{12}", digits):
        return None
    return digits.lower()


# ----------------------------------------------------------------------------------------- normalisers
# Each takes the text of the ``model`` group (or the rule's fixed model) and returns the catalogue spelling,
# or "" when the text cannot be a model of that rule (the hit is then dropped).


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _strip(raw: str) -> str:
    return _collapse(raw)


def _upper(raw: str) -> str:
    return _collapse(raw).upper()


def _lower(raw: str) -> str:
    return _collapse(raw).lower()


def _cisco_ata(raw: str) -> str:
    # "ATA191" -> "ATA191-MPP": the catalogue names the MPP ATAs with their firmware suffix.
    return f"{raw.strip().upper()}-MPP"


def _poly_ucs(raw: str) -> str:
    # "VVX_400" -> "VVX 400", "Trio_8800" -> "Trio 8800", "Edge_E450" -> "Edge E450".
    return _collapse(raw.replace("_", " "))


def _poly_rove(raw: str) -> str:
    # "b4" -> "Rove B4", "30" -> "Rove 30".
    return f"Rove {raw.strip().upper()}"


def _obi(raw: str) -> str:
    # "OBi300" -> "OBi 300", keeping any letter suffix ("OBi504vs" -> "OBi 504vs").
    m = re.fullmatch(r"(?i)obi\s*(\d{3,4})([a-z]{0,3})", raw.strip())
    return f"OBi {m.group(1)}{m.group(2).lower()}" if m else ""


def _yealink(raw: str) -> str:
    # "SIP-T46S" -> "T46S"; the rule already leaves "SIP-" outside the group, this is a second guard.
    model = _collapse(raw).upper()
    return re.sub(r"^SIP[ -]", "", model)


def _audiocodes_phone(raw: str) -> str:
    # "440HDG-Rev0" -> "440HDG": the hardware revision is not part of the model name.
    model = re.sub(r"(?i)-rev[0-9a-z]{0,4}$", "", raw.strip())
    return model.upper()


#: MediaPack models by the number in the product name: the catalogue spelling of the port-type suffix.
#: ``None`` means the product exists with several port types and the UA's own suffix is kept.
_MEDIAPACK_SUFFIX: dict[str, str | None] = {
    "112": "",  # FXS only; the catalogue writes plain MP112
    "114": None,  # FXS, FXO or FXS-FXO
    "118": None,
    "124": "-FXS",  # FXS only; the catalogue writes MP124-FXS
    "1288": "-FXS",
    "502": "",
    "504": "",
    "508": "",
    "516": "",
    "524": "",
    "532": "",
}


def _audiocodes_mediapack(raw: str) -> str:
    # "MP-114 FXS" -> "MP114-FXS", "MP-118 FXS_FXO" -> "MP118-FXS-FXO", "MP-124" -> "MP124-FXS",
    # "MP-114" -> "MP114" (port type unknown: the catalogue resolves the alias).
    m = re.fullmatch(r"(?i)MP-?(\d{2,4}x?)(.*)", raw.strip())
    if not m:
        return ""
    number = m.group(1).lower()
    ports = [p.upper() for p in re.findall(r"(?i)fxs|fxo", m.group(2))]
    fixed = _MEDIAPACK_SUFFIX.get(number)
    if number in _MEDIAPACK_SUFFIX and fixed is not None:
        return f"MP{number}{fixed}"
    return f"MP{number}" + "".join(f"-{p}" for p in ports)


#: Spectralink server products, keyed by their name with separators and case removed.
_SPECTRALINK_SERVERS = {
    "ipdectserver200": "IP-DECT Server 200",
    "ipdectserver400": "IP-DECT Server 400",
    "ipdectserver6500": "IP-DECT Server 6500",
    "virtualipdectserverone": "Virtual IP-DECT Server One",
    "ipdectbasestation": "IP-DECT Base Station",
    "ipdectgateway": "IP-DECT Gateway",
}


def _spectralink(raw: str) -> str:
    key = re.sub(r"[^0-9a-z]", "", raw.lower())
    if key in _SPECTRALINK_SERVERS:
        return _SPECTRALINK_SERVERS[key]
    if re.fullmatch(r"7[2-7]\d2|s3[357]", key):  # handsets: "7742", "S35"
        return key.upper()
    m = re.fullmatch(r"ipdectserver(\d{3,4})", key)  # a server size the table does not list
    return f"IP-DECT Server {m.group(1)}" if m else ""


def _kirk(raw: str) -> str:
    return f"KIRK Wireless Server {raw.strip()}"


def _ascom(raw: str) -> str:
    key = re.sub(r"[^0-9a-z]", "", raw.lower())
    if re.fullmatch(r"ipbs\d?", key):  # IPBS1/IPBS2/IPBS3: the table lists them as "IPBSx"
        return "IPBS"
    if key in ("ipbl", "ipvm"):
        return key.upper()
    if re.fullmatch(r"[di]\d{2}", key):  # handsets are written lower-case: d63, i63
        return key
    if key.startswith("myco3"):
        return "Myco 3 DECT" if key.endswith("dect") else ("Myco 3 Wi-Fi" if "wifi" in key else "Myco 3")
    return ""


def _gigaset(raw: str) -> str:
    # "N720-DM-PRO" -> "N720 DM PRO", "n870e ip pro" -> "N870E IP PRO".
    return _collapse(re.sub(r"[_-]", " ", raw)).upper()


def _ale_iptouch(raw: str) -> str:
    return f"IP Touch {raw.strip()}"


NORMALISERS: dict[str, Callable[[str], str]] = {
    "strip": _strip,
    "upper": _upper,
    "lower": _lower,
    "cisco_ata": _cisco_ata,
    "poly_ucs": _poly_ucs,
    "poly_rove": _poly_rove,
    "obi": _obi,
    "yealink": _yealink,
    "audiocodes_phone": _audiocodes_phone,
    "audiocodes_mediapack": _audiocodes_mediapack,
    "spectralink": _spectralink,
    "kirk": _kirk,
    "ascom": _ascom,
    "gigaset": _gigaset,
    "ale_iptouch": _ale_iptouch,
}


# ------------------------------------------------------------------------------------- compiled table


@dataclass(frozen=True)
class _CompiledRule:
    rule: UARule
    regex: re.Pattern[str]
    normalise: Callable[[str], str]
    order: int

    def applies_to(self, source: str) -> bool:
        return source == "any" or self.rule.source in ("any", source)


def _compile(rules: Iterable[UARule]) -> tuple[_CompiledRule, ...]:
    """Check the table and compile it; a broken row is a programming error and fails the import."""
    compiled: list[_CompiledRule] = []
    seen: set[str] = set()
    for order, rule in enumerate(rules):
        where = f"User-Agent rule {rule.name!r}"
        problems = []
        if rule.name in seen:
            problems.append("the name is used twice")
        if rule.vendor not in VENDORS:
            problems.append(f"vendor {rule.vendor!r} is not one of {', '.join(VENDORS)}")
        if not 0 <= rule.priority <= 99:
            problems.append(f"priority {rule.priority} is outside 0-99")
        if rule.source not in SOURCES:
            problems.append(f"source {rule.source!r} is not one of {', '.join(SOURCES)}")
        if rule.confidence not in CONFIDENCES:
            problems.append(f"confidence {rule.confidence!r} is not one of {', '.join(CONFIDENCES)}")
        if rule.normaliser not in NORMALISERS:
            problems.append(f"normaliser {rule.normaliser!r} does not exist")
        if not rule.examples:
            problems.append("it has no example")
        try:
            regex = re.compile(rule.pattern)
        except re.error as exc:
            problems.append(f"the pattern does not compile: {exc}")
            regex = None
        if regex is not None and _MODEL_GROUP not in regex.groupindex and not rule.model:
            problems.append("the pattern has no 'model' group and the rule gives no fixed model")
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))
        assert regex is not None
        seen.add(rule.name)
        compiled.append(_CompiledRule(rule, regex, NORMALISERS[rule.normaliser], order))
    return tuple(compiled)


_COMPILED = _compile(RULES)
_TABLE_ORDER = {c.rule.name: c.order for c in _COMPILED}


def _check_source(source: object) -> str:
    value = source.strip().lower() if isinstance(source, str) else source
    if value not in SOURCES:
        raise ValueError(
            f"source must be 'sip' (a SIP User-Agent or Server header), 'http' (the User-Agent of a "
            f"configuration request) or 'any', not {source!r}"
        )
    return str(value)


def _build(compiled: _CompiledRule, m: re.Match[str]) -> UAMatch | None:
    rule = compiled.rule
    groups = m.groupdict()
    raw_model = groups.get(_MODEL_GROUP) or rule.model or ""
    model = compiled.normalise(raw_model)
    if not model:
        return None
    firmware = groups.get(_FIRMWARE_GROUP) or None
    mac = None
    for name in _MAC_GROUPS:
        mac = normalise_mac(groups.get(name))
        if mac:
            break
    return UAMatch(
        vendor=rule.vendor,
        model=model,
        firmware=firmware,
        family=rule.family,
        mac=mac,
        rule=rule.name,
        priority=rule.priority,
        confidence=rule.confidence,
        source=rule.source,
    )


def match_all(text: object, *, source: str = "sip") -> list[UAMatch]:
    """Every reading of ``text`` by the rules that apply to ``source``, best first.

    ``source`` is ``"sip"`` for a SIP ``User-Agent``/``Server`` header, ``"http"`` for the User-Agent of a
    provisioning request, or ``"any"`` when the origin is not known. Order: higher priority first, then
    the order of the table. An empty list means no rule knows the string.
    """
    src = _check_source(source)
    value = clean_user_agent(text)
    if not value:
        return []
    hits: list[UAMatch] = []
    for compiled in _COMPILED:
        if not compiled.applies_to(src):
            continue
        try:
            m = compiled.regex.search(value)
            hit = _build(compiled, m) if m else None
        except Exception:  # a table bug must not take the registrar down with it
            logger.exception("User-Agent rule %r failed on %r", compiled.rule.name, value)
            continue
        if hit is not None:
            hits.append(hit)
    hits.sort(key=lambda h: (-h.priority, _TABLE_ORDER[h.rule]))
    return hits


def parse_user_agent(text: object, *, source: str = "sip") -> UAMatch | None:
    """The best reading of a User-Agent, or ``None`` when no rule knows it (see :func:`match_all`)."""
    hits = match_all(text, source=source)
    return hits[0] if hits else None


def describe_rules() -> list[RuleRow]:
    """The table for documentation: name, vendor, priority, confidence and first example of each rule."""
    return [RuleRow(r.name, r.vendor, r.priority, r.confidence, r.examples[0]) for r in RULES]
