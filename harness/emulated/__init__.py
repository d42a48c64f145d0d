"""Emulated devices: a pjsua2 worker process per device (``sipua.UAWorker``), behaving like its vendor."""
