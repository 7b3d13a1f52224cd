"""core/aioloop: the proxy's and the load workers' loop is uvloop's when it is
installed (a dependency on Linux), asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from cloudrun_grpc_cli.core import aioloop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_when_it_is_installed() -> None:
    assert aioloop.run(_loop_module()) == "uvloop"


def test_run_falls_back_to_asyncio_without_uvloop() -> None:
    code = (
        "import sys; sys.modules['uvloop'] = None\n"
        "import asyncio\n"
        "from cloudrun_grpc_cli.core import aioloop\n"
        "async def m():\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(aioloop.run(m()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "asyncio.unix_events\n"


def test_the_proxy_serves_on_uvloop() -> None:
    """The loop the proxy's serve() runs is the one aioloop.run gives (not asyncio.run)."""
    import inspect

    from cloudrun_grpc_cli.core import proxy
    from cloudrun_grpc_cli.core.load import worker

    assert "aioloop.run(" in inspect.getsource(proxy.serve)
    assert "asyncio.run(" not in inspect.getsource(proxy)
    assert "asyncio.run(" not in inspect.getsource(worker)
