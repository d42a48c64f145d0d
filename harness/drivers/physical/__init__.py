"""Drivers for physical devices: over a vendor control API (:mod:`.api_driver`, one thin subclass per
vendor), over the SIP side only (:mod:`.sip_side`), and by asking a person (:mod:`.manual`). A device whose
inventory ``connection`` is ``{protocol: simulator}`` gets the vendor's API simulator (:mod:`.simulated`)
backed by a pjsua2 device registered with the lab's gateway, so the same driver code runs without hardware.
"""
