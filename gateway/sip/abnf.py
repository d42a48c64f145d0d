"""Pieces of the SIP grammar (RFC 3261 §25.1) as compiled regular expressions.

Each rule is written next to the ABNF it implements. Header values reach these expressions already
unfolded (RFC 3261 §7.3.1: folding is equivalent to a single SP), so LWS reduces to ``[ \\t]+`` and
SWS to ``[ \\t]*``.

The patterns are built so that no position can be matched in two ways (adjacent repetitions use
disjoint character classes), which keeps matching linear: no catastrophic backtracking on hostile
input.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CALL_ID_RE",
    "CSEQ_RE",
    "DISPLAY_TOKENS_RE",
    "ESCAPE_BAD_RE",
    "HOSTNAME_RE",
    "IPV4_RE",
    "IPV6_RE",
    "PARAM_RE",
    "QUOTED_STRING_RE",
    "SCHEME_RE",
    "SIP_VERSION_RE",
    "STATUS_CODE_RE",
    "TOKEN",
    "TOKEN_ALPHABET",
    "TOKEN_RE",
    "URI_PASSWORD_RE",
    "URI_USER_RE",
    "VIA_SENT_RE",
    "is_token",
    "made_of",
]

# alphanum = ALPHA / DIGIT
# token    = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS: Final = r"\-.!%*_+`'~A-Za-z0-9"
#: The same characters as plain text, for ``str.strip`` and membership checks without a regular expression.
TOKEN_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
TOKEN: Final = rf"[{TOKEN_CHARS}]+"
TOKEN_RE: Final = re.compile(TOKEN)


def made_of(text: str, alphabet: str) -> bool:
    """Whether ``text`` is one or more characters of ``alphabet``, an alphabet that holds every ASCII letter and
    digit. Letters and digits alone, the usual case, pass with ``isalnum`` (a plain loop); anything else must
    strip to nothing (``str.strip`` builds a mask of the alphabet on every call, and a regular expression costs
    more than either)."""
    return (text.isascii() and text.isalnum()) or (bool(text) and not text.strip(alphabet))


def is_token(text: str) -> bool:
    """``token`` (what ``TOKEN_RE`` matches in full), without the regular expression."""
    return made_of(text, TOKEN_ALPHABET)

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT      (case-insensitive, RFC 3261 §7.1)
SIP_VERSION_RE: Final = re.compile(r"[Ss][Ii][Pp]/([0-9]{1,4})\.([0-9]{1,4})")

# Status-Code = 3DIGIT   (RFC 3261 §7.2; extension-code = 3DIGIT)
STATUS_CODE_RE: Final = re.compile(r"[1-6][0-9][0-9]")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext        = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair   = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING: Final = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
QUOTED_STRING_RE: Final = re.compile(QUOTED_STRING)

# generic-param = token [ EQUAL gen-value ]
# gen-value     = token / host / quoted-string
# SEMI = SWS ";" SWS ; EQUAL = SWS "=" SWS
# The value class admits ":" "[" "]" so that IPv6 hosts (with or without brackets, as in
# via-received) are read whole.
PARAM_RE: Final = re.compile(
    rf"[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*({QUOTED_STRING}|[{TOKEN_CHARS}\[\]:]+))?"
)

# display-name = *(token LWS) / quoted-string
# RFC 4475 §3.1.1.6 (lwsdisp): LWS before "<" is optional in practice. UTF8-NONASCII is tolerated
# in unquoted names because deployed phones send it.
DISPLAY_TOKENS_RE: Final = re.compile(rf"[{TOKEN_CHARS}\x80-\U0010ffff]+(?:[ \t]+[{TOKEN_CHARS}\x80-\U0010ffff]+)*")

# Via: sent-protocol LWS sent-by
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
# SLASH = SWS "/" SWS ; sent-by = host [ COLON port ] ; COLON = SWS ":" SWS
# host = hostname / IPv4address / IPv6reference
VIA_SENT_RE: Final = re.compile(
    rf"[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z_.\-]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
)

# hostname    = *( domainlabel "." ) toplabel [ "." ]
# domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
# Underscores are tolerated (seen in DNS names of lab hosts).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?"
HOSTNAME_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPV4_RE: Final = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
# IPv6reference = "[" IPv6address "]"  (the address itself is checked with the ipaddress module)
IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")

# user            = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
# unreserved      = alphanum / mark ; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
URI_USER_RE: Final = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
URI_PASSWORD_RE: Final = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
# escaped = "%" HEXDIG HEXDIG  -- this finds a "%" that does not start one.
ESCAPE_BAD_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")

# uri-parameter: pname [ "=" pvalue ] ; pname = 1*paramchar ; pvalue = 1*paramchar
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
URI_PARAM_CHARS_RE: Final = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
# header = hname "=" hvalue ; hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
URI_HEADER_CHARS_RE: Final = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]*")

# Call-ID = ( "Call-ID" / "i" ) HCOLON callid ; callid = word [ "@" word ]
# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" / "<" /
#           ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
# Deployed devices also use "=" (base64 identifiers); any visible ASCII is accepted.
CALL_ID_RE: Final = re.compile(r"[!-~]+")

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ_RE: Final = re.compile(rf"([0-9]+)[ \t]+({TOKEN})")
