"""The lab the vendor-driver tests share: every vendor driver on its simulator (``connection: {protocol:
simulator}``), each simulated device a pjsua2 worker registered with an embedded gateway."""

from __future__ import annotations

VENDOR_INVENTORY = """\
gateway:
  mode: embedded
defaults:
  transport: udp
devices:
  - id: caller
    vendor: Poly
    model: VVX 450
    firmware: 5.9.5.0614
    driver: poly-rest
    connection: {protocol: simulator}
    lines:
      - {number: "+14255550111", name: Blake Rivera}
  - id: callee
    vendor: Poly
    model: VVX 450
    firmware: 6.4.3.5018
    driver: poly-rest
    connection: {protocol: simulator}
    lines:
      - {number: "+14255550121", name: Drew Patel}
  - id: pager
    vendor: Algo
    model: "8301"
    firmware: "5.3"
    driver: algo-rest
    connection: {protocol: simulator}
    lines:
      - {number: "+14255550172", name: Paging Zone 1}
  - id: old-cisco
    vendor: Cisco
    model: "7841"
    firmware: 11.0.1MPP
    driver: cisco-mpp
    connection: {protocol: simulator}
    lines:
      - {number: "+14255550105", name: Stock Room}
  - id: yealink
    vendor: Yealink
    model: T46S
    firmware: 66.86.0.15
    driver: yealink-action-uri
    connection: {protocol: simulator}
    lines:
      - {number: "+14255550131", name: Casey Lee}
  - id: cisco
    vendor: Cisco
    model: "8841"
    firmware: 11.3.5MPP
    driver: cisco-mpp
    connection: {protocol: simulator}
    lines:
      - {number: "+14255550141", name: Front Desk}
  - id: ata
    vendor: AudioCodes
    model: MP114
    firmware: 6.60A.367.001
    driver: audiocodes-mp
    connection: {protocol: simulator}
    ssh: {}
    lines:
      - {number: "+14255550151", name: Fax Room, port: 1}
"""
