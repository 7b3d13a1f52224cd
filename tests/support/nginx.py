"""nginx as a Cloud Run-like front end: gRPC over h2c to a backend, and an HTML
`503 Service Unavailable` page while the backend is not up (a cold start).

Needs the nginx binary (Debian's nginx-light; .ci/run installs it). Each front
end runs from its own prefix directory on a free 127.0.0.1 port, in the
foreground, and is stopped when the context ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .hostile import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

CONF = """
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://127.0.0.1:{backend};
            grpc_connect_timeout 2s;
            error_page 502 504 =503 @unavailable;
        }}
        location @unavailable {{
            default_type "text/html; charset=UTF-8";
            return 503 '{page}';
        }}
    }}
}}
"""

PAGE = "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>\n"



@dataclass
class Nginx:
    port: int
    backend: int
    prefix: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def statuses(self) -> list[int]:
        """The HTTP status of every request logged so far."""
        log = self.prefix / "access.log"
        if not log.exists():
            return []
        out = []
        for line in log.read_text().splitlines():
            parts = line.split('"')
            if len(parts) > 2 and parts[2].split():
                out.append(int(parts[2].split()[0]))
        return out


@contextmanager
def nginx_front_end(prefix: Path, backend: int) -> Iterator[Nginx]:
    assert NGINX is not None
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(CONF.format(prefix=prefix, port=port, backend=backend, page=PAGE.strip()))
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"nginx did not start: {err}") from None
                time.sleep(0.02)
        yield Nginx(port, backend, prefix)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
