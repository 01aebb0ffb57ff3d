"""The network guard trips in this process and in every child, and leaves local IPC and loopback alone."""

import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

PROBE = (
    "import socket\n"
    "try:\n"
    "    socket.create_connection(('192.0.2.1', 9), timeout=2)\n"
    "except OSError as e:\n"
    "    print(type(e).__name__, e)\n"
)


def test_guard_is_active_here():
    assert os.environ.get("ASRD_NETGUARD") == "1"
    with pytest.raises(OSError, match="network guard"):
        socket.create_connection(("192.0.2.1", 9), timeout=2)
    with pytest.raises(OSError, match="network guard"):
        socket.create_connection(("2001:db8::1", 9), timeout=2)


def test_guard_trips_in_subprocess():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60).stdout
    assert "NetworkBlocked" in out and "network guard" in out


def _child_probe(queue):
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=2)
        queue.put("connected")
    except OSError as exc:
        queue.put(type(exc).__name__)


def test_guard_trips_in_spawned_child_and_ipc_still_works():
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()  # uses a pipe/socketpair: must keep working
    proc = ctx.Process(target=_child_probe, args=(queue,))
    proc.start()
    assert queue.get(timeout=60) == "NetworkBlocked"
    proc.join(30)
    a, b = socket.socketpair()
    a.sendall(b"ok")
    assert b.recv(2) == b"ok"


def test_loopback_is_not_guarded():
    """Tests run their own servers on 127.0.0.1 (the webhook's): reaching them is allowed."""
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname(), timeout=5) as client:
        peer, _ = server.accept()
        with peer:
            client.sendall(b"ok")
            assert peer.recv(2) == b"ok"
