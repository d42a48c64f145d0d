"""SIP user agents with real RTP and codecs, each in its own worker process.

The pjsua2 wheel allows one Endpoint per process and at most four calls per Endpoint, and aborts the
process when called from a thread it does not know.  sipua therefore runs every user agent host in a
worker process whose single thread owns the library, and drives it through a small versioned RPC:

- ``sipua.protocol``: configuration, commands and events (JSON on a multiprocessing Pipe);
- ``sipua.client.UAWorker``: spawn a worker, send commands, wait for events, detect a dead or hung
  worker within seconds;
- ``sipua.pool.UAPool``: as many workers as the number of calls needs, four calls each at most;
- ``sipua.ports``: SIP/RTP port blocks that never clash between parallel workers or pytest-xdist
  workers.

The parent side never imports pjsua2; only ``sipua.worker`` and ``sipua.agent`` (run in the worker
process) do.
"""

from sipua.client import UAWorker
from sipua.errors import (
    CommandError,
    EventTimeout,
    InvalidArgument,
    ProtocolError,
    RequestTimeout,
    SipUaError,
    WorkerDied,
    WorkerHung,
    WorkerStartupError,
)
from sipua.pool import PoolExhausted, PoolMetrics, UAPool
from sipua.ports import PortAllocator, PortLease, PortsExhausted
from sipua.protocol import (
    AnswerMode,
    CallState,
    DtmfMethod,
    Event,
    EventType,
    MediaStatus,
    TlsSettings,
    TransportKind,
    TransportSpec,
    WorkerConfig,
)

__all__ = [
    "AnswerMode",
    "CallState",
    "CommandError",
    "DtmfMethod",
    "Event",
    "EventTimeout",
    "EventType",
    "InvalidArgument",
    "MediaStatus",
    "PoolExhausted",
    "PoolMetrics",
    "PortAllocator",
    "PortLease",
    "PortsExhausted",
    "ProtocolError",
    "RequestTimeout",
    "SipUaError",
    "TlsSettings",
    "TransportKind",
    "TransportSpec",
    "UAPool",
    "UAWorker",
    "WorkerConfig",
    "WorkerDied",
    "WorkerHung",
    "WorkerStartupError",
]
