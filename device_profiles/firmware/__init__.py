"""Firmware version parsing and ordering, one scheme per vendor of the SIP Gateway table.

>>> v = parse_firmware("cisco", "12-0-1MPP")
>>> v == parse_firmware("cisco", "12.0.1MPP"), str(v), v.family
(True, '12.0.1MPP', 'mpp')
>>> compare_to_requirement(parse_firmware("poly", "5.9.5.0614"), parse_firmware("poly", "5.9.5"))
0
>>> compare_to_requirement(parse_firmware("yealink", "66.82.0.20"), parse_firmware("yealink", "83"))
-1
>>> try_parse_firmware("cisco", "12.0.x").reason
"'12.0.x' is not a Cisco MPP version: wildcards such as 'x' name a range, not a version; expected forms \
like 11.3.5MPP, 12-0-1MPP or 11-2-2MPP0101-013"

Each scheme module documents the forms it reads, its order and its meaning of a requirement.
"""

from device_profiles.firmware.base import (
    FirmwareScheme,
    FirmwareVersion,
    IncomparableFirmware,
    UnparseableFirmware,
)
from device_profiles.firmware.registry import (
    SCHEMES,
    VENDOR_SCHEMES,
    UnknownScheme,
    UnknownVendor,
    compare_to_requirement,
    get_scheme,
    parse_firmware,
    scheme_for_vendor,
    try_parse_firmware,
)

__all__ = [
    "SCHEMES",
    "VENDOR_SCHEMES",
    "FirmwareScheme",
    "FirmwareVersion",
    "IncomparableFirmware",
    "UnknownScheme",
    "UnknownVendor",
    "UnparseableFirmware",
    "compare_to_requirement",
    "get_scheme",
    "parse_firmware",
    "scheme_for_vendor",
    "try_parse_firmware",
]
