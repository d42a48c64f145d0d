"""asyncio edges of the gateway: UDP, TCP and TLS transports that carry out the SIP core's actions."""
