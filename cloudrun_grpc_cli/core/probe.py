"""What a port speaks, asked only after a connection failed: plaintext HTTP/2 or TLS.

A client that dials TLS at a plaintext server (or the reverse) gets words from
gRPC that name a handshake, not the cause. One short probe of the other way
tells which it is, so the error can say "the server speaks plaintext".
"""

from __future__ import annotations

import socket
import ssl

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
PROBE_TIMEOUT = 2.0


def speaks_plaintext_h2(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when the port answers the HTTP/2 preface with a SETTINGS frame (h2c)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_PREFACE + _SETTINGS)
            head = b""
            while len(head) < 9:
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    return head[3] == 0x04  # the frame type of the server's first frame: SETTINGS


def unverified_tls() -> ssl.SSLContext:
    """A TLS client context that checks no certificate (to fetch or probe one), ALPN h2."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


def speaks_tls(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when the port completes a TLS handshake (whatever its certificate)."""
    ctx = unverified_tls()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host or None),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False
