"""Registrar workers: REGISTERs over UDP shared among several processes.

A gateway process runs its SIP core on one CPU. With ``registrar_processes: N`` (``gateway serve
--registrar-processes N``) it starts N - 1 registrar workers and shares the UDP REGISTERs with them, by address of
record: every REGISTER of a user goes to the same process (``zlib.crc32`` of the user name, modulo N; 0 is the
gateway itself), so that process holds all of that user's bindings and answers as RFC 3261 §10.3 asks (the 200
lists every current contact, CSeq order per Call-ID, retransmissions absorbed by the same transaction).

- The gateway's process reads every datagram (:class:`~gateway.transport.manager.TransportManager` ``divert``) and
  hands a REGISTER it does not keep to the worker of its shard over a Unix ``SOCK_SEQPACKET`` pair
  (:mod:`gateway.shards.dispatch`, :mod:`gateway.shards.channel`), the datagrams of one event-loop turn in one
  frame. It keeps everything else, and every REGISTER a
  service of its own must see: over TCP/TLS, of users it does not know, with sign-in credentials, with the E911
  lab-network header.
- A worker (:mod:`gateway.shards.worker`) is the registrar alone: the SIP core's transactions, digest, firmware
  gating, bindings and device records, on the same store (SQLite WAL) and the same nonce secret. It answers
  from the gateway's own UDP socket (inherited), so devices see one address.
- The gateway keeps a copy of every binding: each change a worker makes comes back as a message
  (:mod:`gateway.shards.frames`), and calls, MWI, the control API and offboarding read that copy as if the
  registrar were local. A contact added, removed or moved comes at once; a refresh (a later expiry, Call-ID or
  CSeq on the same contacts and flows) and a device's last-connected time come with the next tick of
  :data:`gateway.shards.worker.REFRESH_DELAY` (one second), the latest per user.
- Changes made on the gateway's side (users and passwords, device records, sign-out and offboarding, deleted
  users, the settable clock, failed authentications for the throttle) go to every worker the same way, in order
  with the datagrams.
- A worker that dies is logged and its shard goes back to the gateway, which already holds its bindings; one
  that has said nothing for :data:`gateway.shards.pool.SILENCE_S` (it reports every second) is killed first.
"""
