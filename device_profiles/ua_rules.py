"""The User-Agent rule table: one row per vendor format, as data.

Each :class:`UARule` is a regular expression with named groups (``model``, ``firmware``, optionally
``mac``/``mac_alt``), a priority (0-99, higher wins), a family tag, the name of a model normaliser (see
:mod:`device_profiles.user_agent`) and the header it applies to (``sip`` for the SIP ``User-Agent`` and
``Server`` headers, ``http`` for the User-Agent of configuration requests, ``any`` for both).

``confidence`` tells a lab engineer what to confirm first:

* ``observed`` -- the format was seen in real traffic: SIP traces, provisioning-server logs and the
  User-Agent parsers of provisioning and PBX projects that were written against real devices.
  ``evidence`` says where.
* ``inferred`` -- nothing public shows the string; the rule follows the vendor's documented product and
  version naming and is deliberately tolerant. The first real device in the lab should confirm it, and its
  User-Agent should be added to ``examples`` (and the rule promoted) or the rule corrected.

Patterns run against a cleaned header value (header name removed, folding and runs of white space turned
into one space, at most :data:`device_profiles.user_agent.MAX_INPUT_CHARS` characters). They are kept
linear: every repetition is bounded, no quantified group contains another unbounded quantifier, and most
patterns start with a literal the regex engine can scan for.

Some products have no User-Agent of their own and therefore no rule: Spectralink and Ascom DECT handsets
reach SIP only through their IP-DECT server (the ``*-handset`` rules below are for servers that name the
handset, which is unconfirmed), and the Ascom TDM base station is a TDM radio behind an IPBL with no IP
stack at all.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Vendors exactly as the catalogue names them.
VENDORS: tuple[str, ...] = (
    "Cisco",
    "Poly",
    "Yealink",
    "AudioCodes",
    "Spectralink",
    "Ascom",
    "Gigaset",
    "Algo",
    "Alcatel-Lucent Enterprise",
    "Tango Extend",
)

SOURCES: tuple[str, ...] = ("sip", "http", "any")
CONFIDENCES: tuple[str, ...] = ("observed", "inferred")


@dataclass(frozen=True)
class UARule:
    """One User-Agent format of one vendor."""

    name: str
    vendor: str
    pattern: str
    priority: int
    family: str | None
    normaliser: str
    source: str
    confidence: str
    examples: tuple[str, ...]
    evidence: str
    #: The model to report when the pattern has no ``model`` group (a product with one model).
    model: str | None = None


# Building blocks. Each is bounded so that no pattern can backtrack more than linearly.
_HEX12 = r"[0-9A-Fa-f]{12}"
_MAC_SEPARATED_OR_NOT = r"[0-9A-Fa-f]{2}(?:[:-]?[0-9A-Fa-f]{2}){5}"
_DOTTED = r"\d{1,4}(?:\.\d{1,6}){1,5}"  # 5.9.5.0614, 66.86.0.15, 11.8.8
_TOKEN = r"[0-9A-Za-z.\-]{0,40}"  # the rest of a version token: 11-1-0MSR3-9, 12.0.3, 6.60A.367.001
_NOT_UPDATER = r"(?!.{0,80}?Type/Updater)"  # Poly's updater reports its own version, not the application's


RULES: tuple[UARule, ...] = (
    # ------------------------------------------------------------------------------------------ Cisco
    UARule(
        name="cisco-mpp-phone",
        vendor="Cisco",
        pattern=(
            rf"Cisco-CP-(?P<model>\d{{4}})-3PCC/(?P<firmware>\d{_TOKEN})"
            rf"(?:_(?P<mac>{_HEX12})(?![0-9A-Za-z]))?(?: \((?P<mac_alt>{_HEX12})\))?"
        ),
        priority=90,
        family="cisco-mpp",
        normaliser="upper",
        source="any",
        confidence="observed",
        examples=(
            "Cisco-CP-7832-3PCC/11.0.1 (00562b043615)",
            "Cisco-CP-8865-3PCC/12.0.3_dcf719f39350_d4e6994b-60bc-4fba-a490-fe5f8e74ceea",
            "Cisco-CP-8832-3PCC/12.0.1 (00562b0a13f1)",
        ),
        evidence=(
            "HTTP form in the wazo-provd Cisco MPP plugin's User-Agent notes; the underscore form with MAC "
            "and device UUIDs in a BroadWorks hoteling REGISTER trace"
        ),
    ),
    UARule(
        name="cisco-enterprise-phone",
        vendor="Cisco",
        # No "-3PCC": enterprise (CUCM) firmware. The model is followed directly by "/", so MPP strings
        # never match. Older 79xx loads write "CP-7942G".
        pattern=rf"Cisco-CP-?(?P<model>\d{{4}}[A-Z]?)/(?P<firmware>\d{_TOKEN})",
        priority=85,
        family="cisco-enterprise",
        normaliser="upper",
        source="any",
        confidence="observed",
        examples=("Cisco-CP8851/12.1.1", "Cisco-CP8845/14.2.1", "Cisco-CP-7942G/8.5.3"),
        evidence="sip-gateway-facts.md (real enterprise loads); the 79xx form in a SIP scanner's version helper",
    ),
    UARule(
        name="cisco-ata-mpp",
        vendor="Cisco",
        pattern=rf"Cisco-(?P<model>ATA19[12])-MPP/(?P<firmware>\d{_TOKEN})(?: \((?P<mac>{_HEX12})\))?",
        priority=90,
        family="cisco-mpp",
        normaliser="cisco_ata",
        source="sip",
        confidence="observed",
        examples=("Cisco-ATA191-MPP/11-1-0MSR3-9", "Cisco-ATA192-MPP/11-2-2MPP0101-013"),
        evidence="Server header of an ATA191 quoted in Greenbone's SIP OS-detection script",
    ),
    UARule(
        name="cisco-ata-mpp-http",
        vendor="Cisco",
        # The parenthesised token is the serial number, not a MAC.
        pattern=r"Cisco/(?P<model>ATA19[12])-MPP-(?P<firmware>\d[0-9A-Za-z.\-]{0,40})(?: \([0-9A-Z]{1,20}\))?",
        priority=90,
        family="cisco-mpp",
        normaliser="cisco_ata",
        source="http",
        confidence="observed",
        examples=("Cisco/ATA191-MPP-11-1-0-MSR4 (FCH2443D9R4)", "Cisco/ATA192-MPP-11-2-2MPP0101-013 (FCH2519L0QX)"),
        evidence="wazo-provd Cisco ATA plugin's User-Agent notes (serial number in parentheses)",
    ),
    UARule(
        name="cisco-spa",
        vendor="Cisco",
        pattern=(
            rf"Cisco/(?P<model>SPA\d{{3}}[A-Z0-9]{{0,3}})-(?P<firmware>\d[0-9A-Za-z.()]{{0,20}})"
            rf"(?: \((?P<mac>{_HEX12})\))?"
        ),
        priority=40,
        family="cisco-spa",
        normaliser="upper",
        source="any",
        confidence="observed",
        examples=("Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)", "Cisco/SPA122-1.4.1(SR5)"),
        evidence="wazo-provd Cisco SPA plugin and Greenbone SIP banners; not a SIP Gateway model",
    ),
    # ------------------------------------------------------------------------------------------- Poly
    UARule(
        name="poly-vvx",
        vendor="Poly",
        pattern=(
            rf"PolycomVVX-(?P<model>VVX_\d{{3}}[A-Z]?)-UA/(?P<firmware>{_DOTTED})"
            rf"(?:_(?P<mac>{_HEX12})(?![0-9A-Za-z]))?(?: \(SN:(?P<mac_alt>{_HEX12})\))?{_NOT_UPDATER}"
        ),
        priority=80,
        family="poly-ucs",
        normaliser="poly_ucs",
        source="any",
        confidence="observed",
        examples=(
            "PolycomVVX-VVX_400-UA/5.9.5.0614_0004f28e5a79",
            "Polycom/5.5.0.20556 PolycomVVX-VVX_410-UA/5.5.0.20556",
            "FileTransport PolycomVVX-VVX_500-UA/5.9.6.2327 Type/Application",
            "PolycomVVX-VVX_150-UA/6.4.1.2280_482567164887",
        ),
        evidence="SIP traces (MAC suffix when sec.tagSerialNo=1) and the wazo-provd Polycom plugin's HTTP notes",
    ),
    UARule(
        name="poly-trio",
        vendor="Poly",
        pattern=(
            rf"PolycomRealPresenceTrio-(?P<model>Trio_[A-Z]?\d{{2,4}})-UA/(?P<firmware>{_DOTTED})"
            rf"(?:_(?P<mac>{_HEX12})(?![0-9A-Za-z]))?(?: \(SN:(?P<mac_alt>{_HEX12})\))?{_NOT_UPDATER}"
        ),
        priority=80,
        family="poly-ucs",
        normaliser="poly_ucs",
        source="any",
        confidence="observed",
        examples=(
            "PolycomRealPresenceTrio-Trio_8500-UA/5.9.2.7727",
            "Polycom/5.4.3.2007 PolycomRealPresenceTrio-Trio_8800-UA/5.4.3.2007",
            "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 (SN:64167f3a2b1c) Type/Application",
        ),
        evidence="FreePBX extension-status UA notes; a UCS PowerShell module's SIP notes; provisioning tests",
    ),
    UARule(
        name="poly-edge",
        vendor="Poly",
        pattern=(
            rf"PolyEdge-(?P<model>Edge_[A-Z]\d{{3}})-UA/(?P<firmware>{_DOTTED})"
            rf"(?:_(?P<mac>{_HEX12})(?![0-9A-Za-z]))?(?: \(SN:(?P<mac_alt>{_HEX12})\))?{_NOT_UPDATER}"
        ),
        priority=80,
        family="poly-ucs",
        normaliser="poly_ucs",
        source="any",
        confidence="observed",
        examples=(
            "PolyEdge-Edge_E220-UA/8.0.0.13670_48256712b942",
            "FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application",
            "PolyEdge-Edge_E350-UA/8.3.1.0614_f04ea4691c59",
        ),
        evidence="BroadWorks registration-table fixture (SIP) and a FreePBX Polycom provisioner (HTTP)",
    ),
    UARule(
        name="poly-ucs-updater",
        vendor="Poly",
        # The updater (boot) stage fetches files with its own version number; it says nothing about the
        # application firmware, so no firmware is reported.
        pattern=(
            rf"FileTransport Poly(?:com)?[A-Za-z]{{1,30}}-(?P<model>[A-Za-z]{{2,12}}_[A-Z]?\d{{2,4}}[A-Z]?)-UA/"
            rf"[0-9.]{{1,30}}(?: \(SN:(?P<mac>{_HEX12})\))? Type/Updater"
        ),
        priority=92,
        family="poly-ucs",
        normaliser="poly_ucs",
        source="http",
        confidence="observed",
        examples=(
            "FileTransport PolycomVVX-VVX_400-UA/5.0.3.1667 Type/Updater",
            "FileTransport PolycomSoundStationIP-SSIP_6000-UA/5.0.3.1667 Type/Updater",
        ),
        evidence="wazo-provd Polycom plugin's HTTP notes (Type/Updater vs Type/Application)",
    ),
    UARule(
        name="poly-ucs-other",
        vendor="Poly",
        # Other UC Software products (CCX, SoundPoint IP, SoundStation IP): not in the vendor table, but
        # recognised so that the verdict names the model instead of "unknown vendor".
        pattern=(
            rf"Poly(?:com)?[A-Za-z]{{2,30}}-(?P<model>[A-Za-z]{{2,12}}_[A-Z]?\d{{2,4}}[A-Z]?)-UA/"
            rf"(?P<firmware>{_DOTTED})(?:_(?P<mac>{_HEX12})(?![0-9A-Za-z]))?"
            rf"(?: \(SN:(?P<mac_alt>{_HEX12})\))?{_NOT_UPDATER}"
        ),
        priority=40,
        family="poly-ucs",
        normaliser="poly_ucs",
        source="any",
        confidence="observed",
        examples=("PolycomSoundPointIP-SPIP_450-UA/4.0.15.1047", "PolycomCCX-CCX_500-UA/7.1.0.100"),
        evidence="FreePBX extension-status UA notes; wazo-provd Polycom plugin notes",
    ),
    UARule(
        name="poly-rove",
        vendor="Poly",
        pattern=(
            r"(?i)(?:^|poly(?:com)?[ _-]?)rove[ _-]?(?:rove[ _-]?)?(?P<model>b[1-4]|[2-4]0)(?![0-9a-z])"
            rf"(?:[ _-]?ua)?(?:[ /_-]{{1,3}}v?(?P<firmware>{_DOTTED}))?"
            rf"(?:[ _;,(]{{1,3}}(?P<mac>{_MAC_SEPARATED_OR_NOT})(?![0-9a-f]))?"
        ),
        priority=60,
        family="poly-rove",
        normaliser="poly_rove",
        source="any",
        confidence="inferred",
        examples=("Poly Rove B4 8.0.5.0002", "PolyRove-Rove_B2-UA/8.0.5.0002"),
        evidence="none public; Poly names the bases Rove B1/B2/B4 and the handsets Rove 20/30/40, firmware 8.0.x",
    ),
    UARule(
        name="poly-obi",
        vendor="Poly",
        pattern=r"OBIHAI/(?P<model>OBi\d{3,4}[A-Za-z]{0,3})-(?P<firmware>\d{1,2}(?:\.\d{1,5}){1,4})",
        priority=80,
        family="obi",
        normaliser="obi",
        source="sip",
        confidence="observed",
        examples=("OBIHAI/OBi202-3.2.2.5921", "OBIHAI/OBi302-3.2.2.5921", "OBIHAI/OBi110-1.3.0.2824"),
        evidence=(
            "OBi202/OBi110/OBi1032 User-Agent and Server headers in FreePBX and SIP tool notes; the "
            "Poly-branded OBi300/302 follow the same firmware line"
        ),
    ),
    UARule(
        name="poly-obi-http",
        vendor="Poly",
        pattern=r"OBIHAI/(?P<model>OBi\d{3,4}[A-Za-z]{0,3})-(?P<firmware>\d{1,2}(?:\.\d{1,5}){1,4})",
        priority=80,
        family="obi",
        normaliser="obi",
        source="http",
        confidence="inferred",
        examples=("OBIHAI/OBi300-3.2.2.5921",),
        evidence="none public for provisioning fetches; assumed equal to the SIP form",
    ),
    # ---------------------------------------------------------------------------------------- Yealink
    UARule(
        name="yealink-phone",
        vendor="Yealink",
        pattern=(
            r"(?i:yealink)[ -](?:SIP[ -])?"
            r"(?P<model>(?:VP-)?(?:T|CP|MP|VC|VP)\d{1,3}[A-Z0-9]{0,4}(?:_[A-Z0-9]{1,3})?) "
            rf"(?P<firmware>{_DOTTED})(?: (?P<mac>{_MAC_SEPARATED_OR_NOT})(?![0-9A-Za-z:]))?"
        ),
        priority=80,
        family="yealink",
        normaliser="yealink",
        source="any",
        confidence="observed",
        examples=(
            "Yealink SIP-T46S 66.86.0.15",
            "Yealink SIP-T57W 96.86.5.1 80:5e:c0:12:dc:69",
            "Yealink SIP-T21P_E2 52.83.0.35",
            "Yealink SIP-T46S 66.86.0.15 00:15:65:4c:3b:b0",
        ),
        evidence="SIP traces, Greenbone SIP banners and the wazo-provd Yealink plugin's HTTP notes",
    ),
    UARule(
        name="yealink-dect",
        vendor="Yealink",
        pattern=(
            r"(?i:yealink)[ -](?:SIP[ -])?(?P<model>W\d{2}[A-Z]{0,3}) "
            rf"(?P<firmware>{_DOTTED})(?: (?P<mac>{_MAC_SEPARATED_OR_NOT})(?![0-9A-Za-z:]))?"
        ),
        priority=80,
        family="yealink-dect",
        normaliser="yealink",
        source="any",
        confidence="observed",
        examples=("Yealink W75DM 108.83.0.40", "Yealink W60B 77.85.0.160 80:5e:c0:aa:00:42"),
        evidence="Greenbone SIP banner (W60B), provisioning logs (HTTP) and sip-gateway-facts.md (W75DM)",
    ),
    # ------------------------------------------------------------------------------------- AudioCodes
    UARule(
        name="audiocodes-phone-sip",
        vendor="AudioCodes",
        # 2.x generic SIP firmware: "AUDC-IPPhone/<version> (<model>[-Rev<n>]; <MAC>)".
        pattern=(
            r"AUDC-IPPhone/(?P<firmware>\d[0-9A-Za-z._\-]{0,40}) "
            rf"\((?P<model>[0-9A-Za-z]{{2,12}}(?:-[0-9A-Za-z]{{1,8}})?)(?:; ?(?P<mac>{_HEX12}))?\)"
        ),
        priority=80,
        family="audiocodes-sip",
        normaliser="audiocodes_phone",
        source="any",
        confidence="observed",
        examples=(
            "AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)",
            "AUDC-IPPhone/2.0.0_build_15 (420HD; 00908F3BBCBA)",
            "AUDC-IPPhone/2.2.16.681 (405-Rev0; 00908F9D1A2B)",
        ),
        evidence="FreePBX and PBX provisioner notes (HTTP User-Agent of 4xxHD phones on the 2.x SIP line)",
    ),
    UARule(
        name="audiocodes-phone-sfb",
        vendor="AudioCodes",
        # 3.x Skype for Business (UC) firmware: "[AUDC/<ver> ]AUDC-IPPhone-<model>_UC_<ver>/<n>".
        pattern=rf"AUDC-IPPhone-(?P<model>[0-9A-Za-z]{{2,12}})_UC_(?P<firmware>{_DOTTED})",
        priority=80,
        family="audiocodes-sfb",
        normaliser="audiocodes_phone",
        source="any",
        confidence="observed",
        examples=(
            "AUDC/3.4.6.604 AUDC-IPPhone-C450HD_UC_3.4.6.604/1",
            "AUDC-IPPhone-445HD_UC_3.4.8.808/1.0.0000.0",
        ),
        evidence="Zoom zero-touch provisioning request (HTTP) published by SySS; AudioCodes EMS test scripts",
    ),
    UARule(
        name="audiocodes-mediapack",
        vendor="AudioCodes",
        pattern=(
            r"(?i:audiocodes-sip-gateway-)(?P<model>MP-?\d{2,4}[xX]?(?:[ _/-]?(?i:fxs|fxo)){0,2})"
            r"/v\.?(?P<firmware>\d[0-9A-Za-z.]{0,30})"
        ),
        priority=80,
        family="audiocodes-mediapack",
        normaliser="audiocodes_mediapack",
        source="any",
        confidence="inferred",
        examples=(
            "Audiocodes-Sip-Gateway-MP-114 FXS/v.6.60A.367.001",
            "Audiocodes-Sip-Gateway-MP-118 FXS_FXO/v.6.60A.367.001",
            "Audiocodes-Sip-Gateway-MP-504/v.7.26A.356.075",
        ),
        evidence=(
            "the 'Audiocodes-Sip-Gateway-<product>/v.<version>' form is observed on Mediant gateways; the "
            "MediaPack product names inside it follow AudioCodes' naming (MP-114 FXS, MP-1288, MP-504)"
        ),
    ),
    UARule(
        name="audiocodes-gateway",
        vendor="AudioCodes",
        pattern=r"(?i:audiocodes-sip-gateway-)(?P<model>[A-Za-z][^/]{0,39}?)/v\.?(?P<firmware>\d[0-9A-Za-z.]{0,30})",
        priority=40,
        family="audiocodes-gateway",
        normaliser="strip",
        source="any",
        confidence="observed",
        examples=(
            "Audiocodes-Sip-Gateway-Mediant 1000/v.5.80A.055.002",
            "Audiocodes-Sip-Gateway-Mediant 1000B/v.7.20A.258",
        ),
        evidence="SIP test fixtures and nmap-style SIP fingerprints; not a SIP Gateway model",
    ),
    # ------------------------------------------------------------------------------------ Spectralink
    UARule(
        name="spectralink-ipdect-server",
        vendor="Spectralink",
        pattern=(
            r"(?i)spectralink[ _/-]{0,3}"
            r"(?P<model>(?:virtual[ _-]?)?ip[ _-]?dect[ _-]?(?:server[ _-]?(?:\d{3,4}|one)|base[ _-]?station|gateway))"
            r"(?![0-9a-z])(?:[ /_-]{1,3}v?(?P<firmware>pcs\w{2,8}|\d{1,2}(?:\.\d{1,4}){1,3}))?"
            rf"(?:[ _;,(]{{1,3}}(?P<mac>{_MAC_SEPARATED_OR_NOT})(?![0-9a-f]))?"
        ),
        priority=60,
        family="spectralink-ipdect",
        normaliser="spectralink",
        source="any",
        confidence="inferred",
        examples=(
            "Spectralink IP-DECT Server 400 PCS22Ab",
            "Spectralink IP-DECT Server 6500/PCS24B",
            "Spectralink Virtual IP-DECT Server One PCS22Ab",
            "Spectralink IP-DECT Base Station PCS22Ab",
        ),
        evidence=(
            "none public; product names and PCS release names from the vendor table and Spectralink's "
            "installation guide"
        ),
    ),
    UARule(
        name="spectralink-handset",
        vendor="Spectralink",
        pattern=(
            r"(?i)spectralink[ _/-]{0,3}(?:dect[ _-]?)?(?:handset[ _-]?)?(?P<model>7[2-7]\d2|s3[357])"
            r"(?![0-9a-z])(?:[ /_-]{1,3}v?(?P<firmware>pcs\w{2,8}))?"
        ),
        priority=55,
        family="spectralink-ipdect",
        normaliser="spectralink",
        source="any",
        confidence="inferred",
        examples=("Spectralink 7742 PCS22B", "Spectralink S35 PCS23Ca"),
        evidence=(
            "none public; handsets reach SIP through the IP-DECT server, so this only fires if the server "
            "names the handset"
        ),
    ),
    UARule(
        name="spectralink-kirk",
        vendor="Spectralink",
        pattern=(
            r"KIRK Wireless Server (?P<model>\d{3,4})"
            r"(?:[ /]{1,3}(?P<firmware>PCS\w{2,8}|\d{1,2}(?:\.\d{1,4}){1,3}))?"
        ),
        priority=50,
        family="spectralink-ipdect",
        normaliser="kirk",
        source="any",
        confidence="inferred",
        examples=("KIRK Wireless Server 6000 PCS10Ba",),
        evidence=(
            "sofia-sip special-cases User-Agents starting 'KIRK Wireless Server' (Spectralink's predecessor "
            "product); the rest of the string is assumed"
        ),
    ),
    # ------------------------------------------------------------------------------------------ Ascom
    UARule(
        name="ascom-ipdect",
        vendor="Ascom",
        pattern=(
            r"(?i)ascom[ _/-]{0,3}(?:ip-?dect[ _-]?)?(?P<model>ipbs\d?|ipbl|ipvm)(?![0-9a-z])"
            rf"(?:[ /_-]{{1,3}}v?(?P<firmware>\d{{1,2}}(?:\.\d{{1,4}}){{1,3}}))?"
            rf"(?:[ _;,(]{{1,3}}(?P<mac>{_MAC_SEPARATED_OR_NOT})(?![0-9a-f]))?"
        ),
        priority=60,
        family="ascom-ipdect",
        normaliser="ascom",
        source="any",
        confidence="inferred",
        examples=("Ascom IPBS2/11.8.8", "Ascom IPVM 11.9.11", "ascom-IPBL/11.9.11"),
        evidence="none public; product and version naming from the vendor table and Ascom's IP-DECT manuals",
    ),
    UARule(
        name="ascom-dect-handset",
        vendor="Ascom",
        pattern=(
            r"(?i)ascom[ _/-]{0,3}(?P<model>d[4-8][1-3])(?![0-9a-z])"
            r"(?:[ /_-]{1,3}v?(?P<firmware>\d{1,2}(?:\.\d{1,4}){1,3}))?"
        ),
        priority=55,
        family="ascom-ipdect",
        normaliser="ascom",
        source="any",
        confidence="inferred",
        examples=("Ascom d63/3.0.8", "Ascom d81 4.17.3"),
        evidence=(
            "none public; DECT handsets reach SIP through the IPBL/IPVM, so this only fires if the system "
            "names the handset"
        ),
    ),
    UARule(
        name="ascom-i63",
        vendor="Ascom",
        pattern=(
            r"(?i)ascom[ _/-]{0,3}(?P<model>i6\d)(?![0-9a-z])"
            rf"(?:[ /_-]{{1,3}}v?(?P<firmware>\d{{1,2}}(?:\.\d{{1,4}}){{1,3}}))?"
            rf"(?:[ _;,(]{{1,3}}(?P<mac>{_MAC_SEPARATED_OR_NOT})(?![0-9a-f]))?"
        ),
        priority=60,
        family="ascom-vowifi",
        normaliser="ascom",
        source="any",
        confidence="inferred",
        examples=("Ascom i63/5.0.1", "Ascom i63 5.0.1 00:01:3e:12:4a:f6"),
        evidence="none public; the i63 runs its own SIP stack over Wi-Fi, version naming from the vendor table",
    ),
    UARule(
        name="ascom-myco",
        vendor="Ascom",
        pattern=(
            r"(?i)ascom[ _/-]{0,3}(?P<model>myco[ _-]?3(?:[ _-]?(?:dect|wi-?fi))?)(?![0-9a-z])"
            r"(?:[ /_-]{1,3}v?(?P<firmware>\d{1,2}(?:\.\d{1,4}){1,3}))?"
        ),
        priority=60,
        family="ascom-myco",
        normaliser="ascom",
        source="any",
        confidence="inferred",
        examples=("Ascom Myco 3 DECT/3.4.1", "Ascom Myco3 3.4.1"),
        evidence="none public; Myco 3 is an Android handset, naming from the vendor table",
    ),
    # ---------------------------------------------------------------------------------------- Gigaset
    UARule(
        name="gigaset-pro",
        vendor="Gigaset",
        pattern=(
            r"(?:^|(?i:gigaset)[ _-])(?P<model>[Nn]\d{3}[Ee]?[ _-](?i:ip|vi|dm)[ _-](?i:pro))"
            rf"/(?P<firmware>\d[0-9A-Za-z.+_\-]{{0,40}})(?:;(?P<mac>{_HEX12}))?"
        ),
        priority=80,
        family="gigaset-pro",
        normaliser="gigaset",
        source="any",
        confidence="observed",
        examples=(
            "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
            "N510 IP PRO/42.245.00.000.000;7C2F804DF9A9",
            "Gigaset N720 DM PRO/70.089.00.000.000;7C2F80CA21E4",
        ),
        evidence="wazo-provd Gigaset plugin's HTTP notes (N870, N510, N720); sip-gateway-facts.md",
    ),
    # ------------------------------------------------------------------------------------------- Algo
    UARule(
        name="algo-sip",
        vendor="Algo",
        pattern=r"Algo-(?P<model>\d{4}[A-Za-z0-9]{0,3})/(?P<firmware>\d{1,2}(?:\.\d{1,4}){1,3})",
        priority=80,
        family="algo",
        normaliser="lower",
        source="sip",
        confidence="observed",
        examples=("Algo-8201/5.2", "Algo-8301/5.3.4"),
        evidence="FreePBX extension-status UA notes ('Algo door intercom')",
    ),
    UARule(
        name="algo-http",
        vendor="Algo",
        pattern=r"Algo-(?P<model>\d{4}[A-Za-z0-9]{0,3})/(?P<firmware>\d{1,2}(?:\.\d{1,4}){1,3})",
        priority=80,
        family="algo",
        normaliser="lower",
        source="http",
        confidence="inferred",
        examples=("Algo-8180G2/5.3", "Algo-8410/5.3"),
        evidence="none public for provisioning fetches; assumed equal to the SIP form",
    ),
    # ------------------------------------------------------------------------ Alcatel-Lucent Enterprise
    UARule(
        name="ale-deskphone",
        vendor="Alcatel-Lucent Enterprise",
        pattern=(
            r"(?<![A-Za-z0-9])ALE (?P<model>[A-Za-z0-9][A-Za-z0-9\-]{0,15}) "
            rf"(?P<firmware>\d{{1,2}}(?:\.\d{{1,4}}){{2,5}})(?: (?P<mac>{_HEX12}))?"
        ),
        priority=70,
        family="ale",
        normaliser="strip",
        source="any",
        confidence="observed",
        examples=("ALE 8028s-GE 1.51.52.2204 487a55023075", "ALE M5 2.14.03.000.2345 487a55a01b2c"),
        evidence=(
            "wazo-provd ALE plugin's HTTP notes (Myriad 8028s); the M3/M5/M7/M8 are assumed to use the same form"
        ),
    ),
    UARule(
        name="ale-iptouch",
        vendor="Alcatel-Lucent Enterprise",
        pattern=r"Alcatel IP Touch (?P<model>\d{4})/(?P<firmware>\d[0-9A-Za-z.]{0,20})",
        priority=60,
        family="ale",
        normaliser="ale_iptouch",
        source="any",
        confidence="observed",
        examples=("Alcatel IP Touch 4008/2.01.10",),
        evidence="wazo-provd Alcatel plugin's HTTP notes; not a SIP Gateway model",
    ),
    # ---------------------------------------------------------------------------------- Tango Extend
    UARule(
        name="tango-esim",
        vendor="Tango Extend",
        pattern=rf"(?i)tango[ _-]?extend(?:[ /_-]{{1,3}}e-?sim)?(?:[ /_-]{{1,3}}v?(?P<firmware>{_DOTTED}))?",
        priority=60,
        family="tango-esim",
        normaliser="strip",
        source="any",
        confidence="inferred",
        examples=("Tango Extend eSIM/2.1.0", "TangoExtend/1.4"),
        evidence="none public; the eSIM endpoint registers from Tango's platform, whose User-Agent is unknown",
        model="eSIM",
    ),
)
