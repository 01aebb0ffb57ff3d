"""Network guard for the test run: with ASRD_NETGUARD=1, no Python process may open an
AF_INET/AF_INET6 connection (the model hubs, PyPI update checks...).

This folder is put first on PYTHONPATH by the test command, so every Python process of the run,
spawned engine children included, imports this file at start-up. Unix sockets and socketpairs
(multiprocessing's channels) are untouched.
"""

import os
import socket

if os.environ.get("ASRD_NETGUARD") == "1":

    class NetworkBlocked(OSError):
        """Raised instead of a network connection during tests."""

    _INET = (socket.AF_INET, socket.AF_INET6)
    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _deny(sock, address):
        if sock.family in _INET:
            raise NetworkBlocked(f"asrd test network guard: connection to {address!r} denied")

    def connect(self, address):
        _deny(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        _deny(self, address)
        return _connect_ex(self, address)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.NetworkBlocked = NetworkBlocked  # so tests can name the type
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MODELSCOPE_OFFLINE", "1")
