"""HTTP + JSON control API of the embedded gateway (loopback; OpenAPI at /openapi.json)."""
