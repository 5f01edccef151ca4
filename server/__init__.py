"""The engine server: protocol (wire format), client, and the long-running `ipfacediff serve` process.

`server.protocol` and `server.client` import only the standard library, pyzmq and msgpack
(numpy lazily); the service modules import the engine.
"""
