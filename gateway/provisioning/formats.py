"""Per-vendor configuration formats: which files a device asks for, the jinja2 template, and the known keys.

A device is recognised from the HTTP User-Agent of its request (as the SIP one is on REGISTER); the vendor
and device kind pick the format, and the requested file name must be one that vendor's devices ask for
(Cisco ``/$PSN.xml`` and ATA ``mac.cfg``, Poly ``$mac.cfg``, Yealink ``$mac.cfg``, AudioCodes ``$mac.cfg``
phones and ``mac.ini`` ATAs, Gigaset ``$mac.xml``, Spectralink and Ascom ``$mac.cfg``, Algo
``algop$mac.conf``). Every rendered configuration is checked before it is served: it must be well formed in
its syntax and use only keys known to that vendor (:func:`validate`), so a template typo is a 500 with the
key named, never a half-understood file on a phone.

Lab mode adds the settings that keep the harness's control path open (the vendor's HTTP API or action URLs
stay enabled after provisioning).

A multi-port ATA gets one file with each port's account: port 1 in the keys above, ports 2… in the vendor's
numbered keys (Cisco ``User_ID_2_``, Poly/OBi ``reg.2.*``; AudioCodes MediaPack ``AuthUserName_2`` … and every
``Sgw…``/``sgw.…`` pair-state key are *lab design*), rendered from ``lines`` (one dict per port: ``n``,
``sip_user``, ``sip_password``, ``display_name``, ``number``, ``state``). A port without an account (offboarded)
has its keys empty.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import jinja2

_ENV = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_XML_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class ConfigInvalid(ValueError):
    """A rendered configuration that is not well formed or uses a key the vendor does not know."""


@dataclass(frozen=True)
class VendorFormat:
    name: str
    vendors: tuple[str, ...]
    kinds: tuple[str, ...] | None  # None: every kind of those vendors not claimed by another format
    files: tuple[str, ...]  # regexes of the requested file name; group 'mac' when the name carries it
    syntax: str  # xml-elements | xml-attrs | xml-symb | kv | ini
    template: str
    keys: frozenset[str]
    content_type: str = "text/plain"
    #: Keys of ports 2… of a multi-port ATA: a regex whose group ``n`` is the port number.
    port_keys: str | None = None

    def known_key(self, key: str) -> bool:
        if key in self.keys:
            return True
        m = re.fullmatch(self.port_keys, key) if self.port_keys else None
        return m is not None and int(m.group("n")) >= 2

    def match_file(self, filename: str) -> re.Match | None:
        for pattern in self.files:
            m = re.fullmatch(pattern, filename, flags=re.IGNORECASE)
            if m:
                return m
        return None


_MAC = r"(?P<mac>[0-9A-Fa-f]{12})"

_CISCO = """<flat-profile>
  <Proxy_1_>{{ sip_host }}:{{ sip_port }}</Proxy_1_>
  <SIP_Transport_1_>{{ transport | upper }}</SIP_Transport_1_>
  <User_ID_1_>{{ sip_user }}</User_ID_1_>
  <Auth_ID_1_>{{ sip_user }}</Auth_ID_1_>
  <Password_1_>{{ sip_password }}</Password_1_>
  <Display_Name_1_>{{ display_name }}</Display_Name_1_>
  <Station_Display_Name>{{ number }}</Station_Display_Name>
  <Profile_Rule>{{ state_url }}</Profile_Rule>
  <Resync_Periodic>3600</Resync_Periodic>
  <Language_Selection>{{ lang }}</Language_Selection>
  <Sign_In_URL>{{ signin_url }}</Sign_In_URL>
  <Pair_State>{{ state }}</Pair_State>
{%- for l in lines[1:] %}
  <Proxy_{{ l.n }}_>{{ sip_host }}:{{ sip_port }}</Proxy_{{ l.n }}_>
  <SIP_Transport_{{ l.n }}_>{{ transport | upper }}</SIP_Transport_{{ l.n }}_>
  <User_ID_{{ l.n }}_>{{ l.sip_user }}</User_ID_{{ l.n }}_>
  <Auth_ID_{{ l.n }}_>{{ l.sip_user }}</Auth_ID_{{ l.n }}_>
  <Password_{{ l.n }}_>{{ l.sip_password }}</Password_{{ l.n }}_>
  <Display_Name_{{ l.n }}_>{{ l.display_name }}</Display_Name_{{ l.n }}_>
  <Line_Number_{{ l.n }}_>{{ l.number }}</Line_Number_{{ l.n }}_>
  <Pair_State_{{ l.n }}_>{{ l.state }}</Pair_State_{{ l.n }}_>
{%- endfor %}
{%- if lab_mode %}
  <Enable_Web_Server>Yes</Enable_Web_Server>
  <Enable_Direct_Action_Url>Yes</Enable_Direct_Action_Url>
{%- endif %}
</flat-profile>
"""
_CISCO_PORT_KEYS = (r"(?:Proxy|SIP_Transport|User_ID|Auth_ID|Password|Display_Name|Line_Number|Pair_State)"
                    r"_(?P<n>\d+)_")
_CISCO_KEYS = {"Proxy_1_", "SIP_Transport_1_", "User_ID_1_", "Auth_ID_1_", "Password_1_", "Display_Name_1_",
               "Station_Display_Name", "Profile_Rule", "Resync_Periodic", "Language_Selection", "Sign_In_URL",
               "Pair_State", "Enable_Web_Server", "Enable_Direct_Action_Url"}

_POLY = """<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<polycomConfig>
  <reg reg.1.address="{{ sip_user }}" reg.1.auth.userId="{{ sip_user }}" reg.1.auth.password="{{ sip_password }}"
       reg.1.displayName="{{ display_name }}" reg.1.label="{{ number }}" reg.1.server.1.address="{{ sip_host }}"
       reg.1.server.1.port="{{ sip_port }}" reg.1.server.1.transport="{{ transport | upper }}Only"/>
  <device device.prov.serverName="{{ state_url }}" device.set="1"/>
  <lcl lcl.ml.lang="{{ lang }}"/>
  <sgw sgw.signin.url="{{ signin_url }}" sgw.pair.state="{{ state }}"/>
{%- for l in lines[1:] %}
  <reg reg.{{ l.n }}.address="{{ l.sip_user }}" reg.{{ l.n }}.auth.userId="{{ l.sip_user }}"
       reg.{{ l.n }}.auth.password="{{ l.sip_password }}" reg.{{ l.n }}.displayName="{{ l.display_name }}"
       reg.{{ l.n }}.label="{{ l.number }}" reg.{{ l.n }}.server.1.address="{{ sip_host }}"
       reg.{{ l.n }}.server.1.port="{{ sip_port }}" reg.{{ l.n }}.server.1.transport="{{ transport | upper }}Only"
       reg.{{ l.n }}.sgw.pair.state="{{ l.state }}"/>
{%- endfor %}
{%- if lab_mode %}
  <apps apps.restapi.enabled="1"/>
{%- endif %}
</polycomConfig>
"""
_POLY_PORT_KEYS = (r"reg\.(?P<n>\d+)\.(?:address|auth\.userId|auth\.password|displayName|label|server\.1\.address"
                   r"|server\.1\.port|server\.1\.transport|sgw\.pair\.state)")
_POLY_KEYS = {"reg.1.address", "reg.1.auth.userId", "reg.1.auth.password", "reg.1.displayName", "reg.1.label",
              "reg.1.server.1.address", "reg.1.server.1.port", "reg.1.server.1.transport", "device.prov.serverName",
              "device.set", "lcl.ml.lang", "sgw.signin.url", "sgw.pair.state", "apps.restapi.enabled"}

_YEALINK = """#!version:1.0.0.1
account.1.enable = 1
account.1.label = {{ number }}
account.1.display_name = {{ display_name }}
account.1.auth_name = {{ sip_user }}
account.1.user_name = {{ sip_user }}
account.1.password = {{ sip_password }}
account.1.sip_server.1.address = {{ sip_host }}
account.1.sip_server.1.port = {{ sip_port }}
account.1.sip_server.1.transport_type = {{ {'udp': 0, 'tcp': 1, 'tls': 2}[transport] }}
static.auto_provision.server.url = {{ state_url }}
lang.gui = {{ lang }}
sgw.signin.url = {{ signin_url }}
sgw.pair_state = {{ state }}
{%- if lab_mode %}
features.action_uri.enable = 1
{%- endif %}
"""
_YEALINK_KEYS = {"account.1.enable", "account.1.label", "account.1.display_name", "account.1.auth_name",
                 "account.1.user_name", "account.1.password", "account.1.sip_server.1.address",
                 "account.1.sip_server.1.port", "account.1.sip_server.1.transport_type",
                 "static.auto_provision.server.url", "lang.gui", "sgw.signin.url", "sgw.pair_state",
                 "features.action_uri.enable"}

_AUDC_PHONE = """voip/line/0/enabled=1
voip/line/0/id={{ sip_user }}
voip/line/0/auth_name={{ sip_user }}
voip/line/0/auth_password={{ sip_password }}
voip/line/0/description={{ display_name }}
voip/line/0/extension_display={{ number }}
voip/signalling/sip/proxy_address={{ sip_host }}
voip/signalling/sip/port={{ sip_port }}
voip/signalling/sip/transport_protocol={{ transport | upper }}
provisioning/configuration/url={{ state_url }}
personal_settings/language={{ lang }}
sgw/signin_url={{ signin_url }}
sgw/pair_state={{ state }}
{%- if lab_mode %}
management/rest_api/enabled=1
{%- endif %}
"""
_AUDC_PHONE_KEYS = {"voip/line/0/enabled", "voip/line/0/id", "voip/line/0/auth_name", "voip/line/0/auth_password",
                    "voip/line/0/description", "voip/line/0/extension_display",
                    "voip/signalling/sip/proxy_address", "voip/signalling/sip/port",
                    "voip/signalling/sip/transport_protocol", "provisioning/configuration/url",
                    "personal_settings/language", "sgw/signin_url", "sgw/pair_state", "management/rest_api/enabled"}

_AUDC_ATA = """; AudioCodes MediaPack configuration
[SYSTEM Params]
ProvisioningURL = '{{ state_url }}'
Language = '{{ lang }}'
SgwSignInURL = '{{ signin_url }}'
SgwPairState = '{{ state }}'
{%- if lab_mode %}
EnableRestAPI = 1
{%- endif %}

[SIP Params]
ProxyIP = '{{ sip_host }}:{{ sip_port }}'
SIPTransportType = '{{ transport | upper }}'
AuthUserName = '{{ sip_user }}'
AuthPassword = '{{ sip_password }}'
DisplayName = '{{ display_name }}'
PhoneNumber = '{{ number }}'
{%- for l in lines[1:] %}
AuthUserName_{{ l.n }} = '{{ l.sip_user }}'
AuthPassword_{{ l.n }} = '{{ l.sip_password }}'
DisplayName_{{ l.n }} = '{{ l.display_name }}'
PhoneNumber_{{ l.n }} = '{{ l.number }}'
SgwPairState_{{ l.n }} = '{{ l.state }}'
{%- endfor %}
"""
_AUDC_ATA_PORT_KEYS = r"(?:AuthUserName|AuthPassword|DisplayName|PhoneNumber|SgwPairState)_(?P<n>\d+)"
_AUDC_ATA_KEYS = {"ProvisioningURL", "Language", "SgwSignInURL", "SgwPairState", "EnableRestAPI", "ProxyIP",
                  "SIPTransportType", "AuthUserName", "AuthPassword", "DisplayName", "PhoneNumber"}

_GIGASET = """<?xml version="1.0" encoding="UTF-8"?>
<ProviderFrame xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<Provider>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_SERVER" class="symb_item" value="{{ sip_host }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.uiI_SIP_SERVER_PORT" class="symb_item" value="{{ sip_port }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.ucI_SIP_TRANSPORT" class="symb_item" value="{{ transport | upper }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1" class="symb_item" value="{{ display_name }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_LOGIN_ID_1" class="symb_item" value="{{ sip_user }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_USER_ID_1" class="symb_item" value="{{ sip_user }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_PASSWORD_1" class="symb_item" value="{{ sip_password }}"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_DISPLAYNAME_1" class="symb_item" value="{{ number }}"/>
  <SYMB_ITEM ID="BS_Provider.aucS_PROV_URL" class="symb_item" value="{{ state_url }}"/>
  <SYMB_ITEM ID="BS_Language.ucS_LANGUAGE" class="symb_item" value="{{ lang }}"/>
  <SYMB_ITEM ID="SGW.aucS_SIGNIN_URL" class="symb_item" value="{{ signin_url }}"/>
  <SYMB_ITEM ID="SGW.ucS_PAIR_STATE" class="symb_item" value="{{ state }}"/>
{%- if lab_mode %}
  <SYMB_ITEM ID="BS_WEB.ucB_WEB_UI_ENABLED" class="symb_item" value="1"/>
{%- endif %}
</Provider>
</ProviderFrame>
"""
_GIGASET_KEYS = {"BS_IP_Data1.aucS_SIP_SERVER", "BS_IP_Data1.uiI_SIP_SERVER_PORT", "BS_IP_Data1.ucI_SIP_TRANSPORT",
                 "BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1", "BS_IP_Data1.aucS_SIP_LOGIN_ID_1",
                 "BS_IP_Data1.aucS_SIP_USER_ID_1", "BS_IP_Data1.aucS_SIP_PASSWORD_1",
                 "BS_IP_Data1.aucS_SIP_DISPLAYNAME_1", "BS_Provider.aucS_PROV_URL", "BS_Language.ucS_LANGUAGE",
                 "SGW.aucS_SIGNIN_URL", "SGW.ucS_PAIR_STATE", "BS_WEB.ucB_WEB_UI_ENABLED"}

_SPECTRALINK = """# Spectralink IP-DECT server
sip.proxy.domain={{ sip_host }}
sip.proxy.port={{ sip_port }}
sip.transport={{ transport }}
user.1.username={{ sip_user }}
user.1.authname={{ sip_user }}
user.1.password={{ sip_password }}
user.1.displayname={{ display_name }}
user.1.number={{ number }}
provisioning.config.url={{ state_url }}
application.language={{ lang }}
sgw.signin.url={{ signin_url }}
sgw.pair_state={{ state }}
{%- if lab_mode %}
application.xml_api.enable=true
{%- endif %}
"""
_SPECTRALINK_KEYS = {"sip.proxy.domain", "sip.proxy.port", "sip.transport", "user.1.username", "user.1.authname",
                     "user.1.password", "user.1.displayname", "user.1.number", "provisioning.config.url",
                     "application.language", "sgw.signin.url", "sgw.pair_state", "application.xml_api.enable"}

_ASCOM = """# Ascom IP-DECT base station
sip/proxy={{ sip_host }}
sip/port={{ sip_port }}
sip/transport={{ transport }}
user/1/name={{ sip_user }}
user/1/auth={{ sip_user }}
user/1/password={{ sip_password }}
user/1/display={{ display_name }}
user/1/number={{ number }}
provisioning/url={{ state_url }}
system/language={{ lang }}
sgw/signin_url={{ signin_url }}
sgw/pair_state={{ state }}
{%- if lab_mode %}
system/web_admin=1
{%- endif %}
"""
_ASCOM_KEYS = {"sip/proxy", "sip/port", "sip/transport", "user/1/name", "user/1/auth", "user/1/password",
               "user/1/display", "user/1/number", "provisioning/url", "system/language", "sgw/signin_url",
               "sgw/pair_state", "system/web_admin"}

_ALGO = """# Algo SIP endpoint
sip.proxy = {{ sip_host }}:{{ sip_port }}
sip.transport = {{ transport }}
sip.u1.user = {{ sip_user }}
sip.u1.auth = {{ sip_user }}
sip.u1.pwd = {{ sip_password }}
sip.u1.display = {{ display_name }}
sip.u1.number = {{ number }}
prov.url = {{ state_url }}
admin.lang = {{ lang }}
sgw.signin.url = {{ signin_url }}
sgw.pair_state = {{ state }}
{%- if lab_mode %}
api.rest.enable = 1
{%- endif %}
"""
_ALGO_KEYS = {"sip.proxy", "sip.transport", "sip.u1.user", "sip.u1.auth", "sip.u1.pwd", "sip.u1.display",
              "sip.u1.number", "prov.url", "admin.lang", "sgw.signin.url", "sgw.pair_state", "api.rest.enable"}

FORMATS: tuple[VendorFormat, ...] = (
    VendorFormat("cisco-ata", ("Cisco",), ("ata",), (rf"{_MAC}\.cfg", r"(?P<psn>ATA\d{3})\.xml"), "xml-elements",
                 _CISCO, frozenset(_CISCO_KEYS), "application/xml", _CISCO_PORT_KEYS),
    VendorFormat("cisco-mpp", ("Cisco",), None, (r"(?P<psn>[A-Za-z0-9_-]{2,32})\.xml",), "xml-elements", _CISCO,
                 frozenset(_CISCO_KEYS), "application/xml"),
    VendorFormat("poly", ("Poly",), None, (rf"{_MAC}\.cfg",), "xml-attrs", _POLY, frozenset(_POLY_KEYS),
                 "application/xml", _POLY_PORT_KEYS),
    VendorFormat("yealink", ("Yealink",), None, (rf"{_MAC}\.cfg",), "kv", _YEALINK, frozenset(_YEALINK_KEYS)),
    VendorFormat("audiocodes-ata", ("AudioCodes",), ("ata",), (rf"{_MAC}\.ini",), "ini", _AUDC_ATA,
                 frozenset(_AUDC_ATA_KEYS), port_keys=_AUDC_ATA_PORT_KEYS),
    VendorFormat("audiocodes", ("AudioCodes",), None, (rf"{_MAC}\.cfg",), "kv", _AUDC_PHONE,
                 frozenset(_AUDC_PHONE_KEYS)),
    VendorFormat("gigaset", ("Gigaset",), None, (rf"{_MAC}\.xml",), "xml-symb", _GIGASET, frozenset(_GIGASET_KEYS),
                 "application/xml"),
    VendorFormat("spectralink", ("Spectralink",), None, (rf"{_MAC}\.cfg",), "kv", _SPECTRALINK,
                 frozenset(_SPECTRALINK_KEYS)),
    VendorFormat("ascom", ("Ascom",), None, (rf"{_MAC}\.cfg",), "kv", _ASCOM, frozenset(_ASCOM_KEYS)),
    VendorFormat("algo", ("Algo",), None, (rf"algop{_MAC}\.conf",), "kv", _ALGO, frozenset(_ALGO_KEYS)),
)


def format_for(vendor: str | None, kind: str | None) -> VendorFormat | None:
    """The configuration format of a vendor's device kind (None: SIP Gateway does not provision it)."""
    if not vendor:
        return None
    for fmt in FORMATS:
        if vendor in fmt.vendors and (fmt.kinds is None or kind in fmt.kinds):
            return fmt
    return None


def expected_files(fmt: VendorFormat, mac: str) -> list[str]:
    """File names a device of this format asks for (for error messages)."""
    out = []
    for pattern in fmt.files:
        text = pattern.replace(_MAC, mac).replace(r"\.", ".")
        out.append(re.sub(r"\(\?P<psn>[^)]*\)", "<PSN>", text))
    return out


def render(fmt: VendorFormat, **values) -> str:
    env = _XML_ENV if fmt.syntax.startswith("xml") else _ENV  # values are escaped in XML
    values.setdefault("lines", ())
    text = env.from_string(fmt.template).render(**values)
    validate(fmt, text)
    return text


def parse(syntax: str, text: str) -> dict[str, str]:
    """Keys and values of a configuration in ``syntax``; raises :class:`ConfigInvalid` saying where it is broken."""
    if syntax.startswith("xml"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            line, col = exc.position
            raise ConfigInvalid(f"not well-formed XML at line {line} column {col}: {exc}") from None
        out: dict[str, str] = {}
        if syntax == "xml-elements":
            for child in root:
                out[child.tag] = (child.text or "").strip()
        elif syntax == "xml-attrs":
            for el in root.iter():
                if el is not root:
                    out.update(el.attrib)
        else:  # xml-symb
            for el in root.iter("SYMB_ITEM"):
                if "ID" not in el.attrib:
                    raise ConfigInvalid("a SYMB_ITEM has no ID attribute")
                out[el.attrib["ID"]] = el.attrib.get("value", "")
        return out
    out = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if syntax == "ini" and line.startswith("["):
            if not line.endswith("]"):
                raise ConfigInvalid(f"line {n}: section header {line!r} has no closing ']'")
            continue
        if "=" not in line:
            raise ConfigInvalid(f"line {n}: expected 'key = value', found {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        if not key:
            raise ConfigInvalid(f"line {n}: empty key")
        if key in out:
            raise ConfigInvalid(f"line {n}: key {key!r} appears twice")
        if syntax == "ini" and len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        out[key] = value
    return out


def validate(fmt: VendorFormat, text: str) -> dict[str, str]:
    """Well formed, and only keys ``fmt``'s vendor knows; returns the keys and values."""
    values = parse(fmt.syntax, text)
    unknown = sorted(k for k in values if not fmt.known_key(k))
    if unknown:
        raise ConfigInvalid(f"{fmt.name} configuration uses key(s) the vendor does not know: {', '.join(unknown)}")
    if not values:
        raise ConfigInvalid(f"{fmt.name} configuration has no settings")
    return values
