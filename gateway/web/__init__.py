"""The gateway's web pages: the sign-in page a tenant user enters a pairing code on, and the admin page.

Served by the provisioning HTTP server (:mod:`gateway.provisioning.server`) on the gateway's loop:

- ``GET /signin`` (also under ``/lang_xx/``): user name, password and the 9-character pairing code the device
  shows; ``POST /signin`` signs the device in as that user, or answers the page again with what is wrong.
- ``GET /admin/devices``: the SIP devices list of an admin centre, one row per line (each port of a multi-port
  ATA is its own row, with its hardware id ``xx-xx-xx-xx-xx-xx:002``) — model, firmware and its verdict, state
  (onboarding / signed out / signed in / offboarded), user, last seen, offboarding date — with the actions
  *sign out* and *restart* (``POST /admin/devices/{key}/signout`` and ``…/restart``).

The sign-in page is always open (a user signing a device in has no token). The admin pages need
``Authorization: Bearer <token>`` when the gateway has a control token (:mod:`gateway.control_api.auth`).
"""

from gateway.web.pages import routes

__all__ = ["routes"]
