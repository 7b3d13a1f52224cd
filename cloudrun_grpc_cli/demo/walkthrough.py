"""`crgrpc demo`: the Cloud Run gRPC walkthrough end to end, offline."""

from __future__ import annotations

from ..render.env import Environment


def run_demo(env: Environment) -> int:
    from ..cli.main import main
    from .server import build_server

    server = build_server("127.0.0.1", 0)
    target = f"http://{server.address}"
    out = env.stdout
    try:
        steps: list[tuple[str, list[str]]] = [
            ("List the services", ["list", target]),
            ("Describe the service", ["describe", target, "echo.EchoServer"]),
        ]
        for i in range(1, 6):
            steps.append(
                (f"Unary call {i} of 5", ["call", target, "echo.EchoServer/SayHello", "-d", f'{{"name": "demo-{i}"}}'])
            )
        steps.append(
            ("Server-streaming call", ["call", target, "echo.EchoServer/SayHelloStream", "-d", '{"name": "demo", "count": 3}'])
        )
        for title, argv in steps:
            out.write(f"\n== {title}: crgrpc {' '.join(argv)}\n")
            out.flush()
            code = main([*argv, "-o", "pretty", "--color", env.color], env=env)
            if code:
                return code
        out.write("\ndemo finished: every call succeeded\n")
        return 0
    finally:
        server.stop()
