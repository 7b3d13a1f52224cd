"""`python -m cloudrun_grpc_cli` runs crgrpc."""

from .cli.main import run

run()
