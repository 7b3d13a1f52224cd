"""`python -m cloudrun_grpc_cli` runs crgrpc."""

from .cli.entry import run

run()
