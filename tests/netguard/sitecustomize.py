"""Network guard for the test run: with ASRD_NETGUARD=1, no Python process may open an
AF_INET/AF_INET6 connection (the model hubs, PyPI update checks...) except to a loopback address
(127.0.0.0/8, ::1), where tests run their own servers (the notification webhook's). With
$COVERAGE_PROCESS_START set (the mutation check's mapping run), it also starts coverage here.

This folder is put first on PYTHONPATH by the test command, so every Python process of the run,
spawned engine children included, imports this file at start-up. Unix sockets and socketpairs
(multiprocessing's channels) are untouched.
"""

import ipaddress
import os
import socket

if os.environ.get("ASRD_NETGUARD") == "1":

    class NetworkBlocked(OSError):
        """Raised instead of a network connection during tests."""

    _INET = (socket.AF_INET, socket.AF_INET6)
    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _loopback(address):
        try:
            return ipaddress.ip_address(address[0]).is_loopback
        except (ValueError, TypeError, IndexError):  # a host name: connect() would resolve it itself
            return False

    def _deny(sock, address):
        if sock.family in _INET and not _loopback(address):
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

# The mutation check (scripts/mutation) maps each line to the tests that reach it, in every process
# of the run: coverage starts here when asked, as it would from its own .pth file.
if os.environ.get("COVERAGE_PROCESS_START"):
    try:
        import coverage
    except ImportError:
        pass
    else:
        coverage.process_startup()
