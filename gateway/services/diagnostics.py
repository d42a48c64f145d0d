"""Diagnostic codes the gateway puts on every rejection, so a person can look up why.

Each rejection carries ``Warning: 399 <gateway> "SGW-xxx: text"`` (RFC 3261 §20.43) and, for CANCEL and
BYE it originates, a ``Reason`` header. The README lists every code with what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    code: str
    status: int
    summary: str
    action: str


_ALL = [
    Diagnostic("SGW-AUTH-401", 401, "authentication required",
               "the device must answer the digest challenge with the credentials of its user"),
    Diagnostic("SGW-AUTH-FAILED", 403, "authentication failed",
               "check the SIP user name and password provisioned on the device (unknown users and wrong "
               "passwords look the same)"),
    Diagnostic("SGW-AUTH-THROTTLED", 503, "too many failed authentications from this address",
               "fix the credentials, then wait for the Retry-After interval"),
    Diagnostic("SGW-AUTH-NOT-REGISTERED", 403, "the device is not registered",
               "a device must be registered before it can place calls"),
    Diagnostic("SGW-FW-BELOW-MINIMUM", 403, "firmware below the vendor table's minimum",
               "upgrade the device to the minimum firmware named in the text"),
    Diagnostic("SGW-FW-WRONG-FAMILY", 403, "wrong firmware family",
               "install the firmware family named in the text (e.g. Cisco MPP, AudioCodes 2.x SIP line)"),
    Diagnostic("SGW-FW-UNKNOWN-MODEL", 403, "device model not in the vendor table",
               "use a model from the vendor table; the text names the closest catalogue models"),
    Diagnostic("SGW-FW-UNPARSEABLE", 403, "firmware version could not be read from the User-Agent",
               "the device's User-Agent does not carry a version in its vendor's format"),
    Diagnostic("SGW-REG-INTERVAL", 423, "registration interval too brief",
               "register with an expiry of at least Min-Expires seconds"),
    Diagnostic("SGW-REG-BAD-CONTACT", 400, "malformed registration",
               "the text says which Contact or Expires value is wrong"),
    Diagnostic("SGW-REG-OUT-OF-ORDER", 500, "out-of-order REGISTER (CSeq not higher than the binding's)",
               "the device retransmitted or reordered registrations; it will recover on its next refresh"),
    Diagnostic("SGW-REG-FOREIGN-AOR", 403, "the To address belongs to another user than the credentials",
               "register the address of record of the authenticated user"),
    Diagnostic("SGW-ROUTE-NOT-FOUND", 404, "no user or PSTN route for the number",
               "dial a number of a tenant user or a PSTN range configured in the tenant"),
    Diagnostic("SGW-ROUTE-NO-NUMBER", 404, "the called user has no phone number",
               "SIP devices can only call users who have phone numbers; assign one to the user"),
    Diagnostic("SGW-ROUTE-UNREACHABLE", 480, "the called user has no reachable endpoint",
               "the called user's devices are not registered and no Teams client is online"),
    Diagnostic("SGW-ROUTE-BUSY", 486, "every endpoint of the called user is busy",
               "try again later"),
    Diagnostic("SGW-POLICY-SIP-DEVICES", 403, "the user's calling policy does not allow SIP devices",
               "set AllowSIPDevicesCalling in the user's calling policy"),
    Diagnostic("SGW-POLICY-CALL-REDIRECT", 403, "call redirect refused: AllowCallRedirect is disabled",
               "enable AllowCallRedirect in the user's calling policy for local call forwarding"),
    Diagnostic("SGW-DEVICE-OFFBOARDED", 403, "the device was offboarded",
               "factory-reset the device so that it onboards again"),
    Diagnostic("SGW-DEVICE-SIGNED-OUT", 403, "the device's sign-in credentials are no longer valid",
               "the device was signed out; sign in again (pairing code) and let it fetch its configuration"),
    Diagnostic("SGW-ONBOARDING-RESTRICTED", 403, "onboarding credentials reach only sign-in, *55* and emergency",
               "sign the device in (pairing code, or *55* then remote sign-in) before calling"),
    Diagnostic("SGW-ENROL-OK", 603, "admin verification code accepted (*55*)",
               "nothing: the device waits for sign-in"),
    Diagnostic("SGW-ENROL-REFUSED", 403, "admin verification code refused (*55*)",
               "the text says why (unknown, used, expired, another device's code); ask the admin for a new one"),
    Diagnostic("SGW-LOOP", 482, "a call loop was detected", "check forwarding rules that point at each other"),
    Diagnostic("SGW-ROUTE-DND", 486, "the called user is in do-not-disturb and has no voicemail to take the call",
               "the called user dials *31* (or changes presence) to receive calls again"),
    Diagnostic("SGW-FEATURE-DND-ON", 603, "do-not-disturb set (*30*)", "nothing: dial *31* to turn it off"),
    Diagnostic("SGW-FEATURE-DND-OFF", 603, "do-not-disturb and user-configured presence reset (*31*)",
               "nothing: calls ring the user's devices again"),
    Diagnostic("SGW-FEATURE-UNKNOWN", 404, "not a feature code of this gateway",
               "dial one of the feature codes the text lists"),
    Diagnostic("SGW-FEATURE-ARGUMENT", 484, "the feature code was dialled with an argument it does not take",
               "dial the code alone, e.g. *30*"),
    Diagnostic("SGW-FEATURE-SIGNED-OUT", 403, "feature codes from a signed-out or onboarding device are refused",
               "sign a user in on the device first"),
    Diagnostic("SGW-FEATURE-FAILED", 500, "the feature code could not be carried out",
               "the text says why; try again"),
    Diagnostic("SGW-FORWARDED", 181, "the call is being forwarded (redirect, no answer, busy → voicemail)",
               "nothing: the text names where the call goes"),
    Diagnostic("SGW-FWD-ON", 603, "call forwarding set (*33*, *34*, *35*)", "nothing: dial *32* to clear it"),
    Diagnostic("SGW-FWD-OFF", 603, "call forwarding cleared (*32*)", "nothing"),
    Diagnostic("SGW-FWD-ARGUMENT", 484, "the forwarding code's argument is malformed",
               "dial *33*<number>, *34*<number>*<seconds> (5-120) or *35*<number>"),
    Diagnostic("SGW-FWD-TARGET", 404, "the forwarding target is neither a tenant number nor a PSTN route",
               "forward to a number the gateway can route"),
    Diagnostic("SGW-REDIRECT-REFUSED", 480, "a device's redirect (3xx) could not be followed",
               "the text says why (no Contact, unreachable target)"),
    Diagnostic("SGW-MWI-NO-USER", 404, "message-summary subscription for an unknown user",
               "subscribe to the address of record of the device's own user"),
    Diagnostic("SGW-MWI-NOT-REGISTERED", 403, "message-summary subscription from an address without a registration",
               "register the device before it subscribes, from the same address"),
    Diagnostic("SGW-MWI-BAD-SUBSCRIBE", 400, "malformed message-summary subscription", "the text says what is wrong"),
    Diagnostic("SGW-VOICEMAIL-UNAVAILABLE", 480, "voicemail cannot take the call now (no free media slot)",
               "try again"),
    Diagnostic("SGW-TRANSFER", 481, "an INVITE with Replaces names no call of this gateway (RFC 3891)",
               "the consultation call ended before the transfer; transfer again"),
]

DIAGNOSTICS: dict[str, Diagnostic] = {d.code: d for d in _ALL}


def warning_header(code: str, text: str, agent: str = "sipgw-lab") -> str:
    """The value of a ``Warning: 399`` header carrying a diagnostic code and a human text."""
    if code not in DIAGNOSTICS:
        raise KeyError(f"unknown diagnostic code {code!r}")
    safe = text.replace("\\", "\\\\").replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'399 {agent} "{code}: {safe}"'


def reason_header(code: str, text: str, cause: int | None = None) -> str:
    """A ``Reason`` header (RFC 3326) carrying a diagnostic code."""
    status = cause if cause is not None else DIAGNOSTICS[code].status
    safe = text.replace('"', "'")
    return f'SIP;cause={status};text="{code}: {safe}"'
