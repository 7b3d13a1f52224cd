"""The console script's entry point (`crgrpc`, `python -m cloudrun_grpc_cli`).

Start-up runs without Python's cyclic garbage collector. Importing grpc,
protobuf, typer and crgrpc's modules allocates hundreds of thousands of
objects that live as long as the process, and the collector would walk them
again and again while they are made: about 4% of a short call's work
(bench/instructions.py counts it). `end_startup` freezes what start-up made, so later
collections skip it, and turns the collector back on; `call` does so once its
method is resolved and its request converted, every other command before it
runs.
"""

from __future__ import annotations

import gc


def end_startup() -> None:
    """The collector back on, start-up's objects out of its reach (a no-op when on)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run() -> None:
    gc.disable()
    from .main import run as run_main

    run_main()
