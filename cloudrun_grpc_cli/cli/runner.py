"""Shared steps of list, describe and call: settings, then the core session.

`prepare` turns what the user typed into a Target and Settings; `session`
opens core.session.open_session with the notices and the spinner around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from ..render.env import Environment
from ..settings import Settings
from .build import build_settings, build_target
from .console import OUTPUT_MODES, current_env, notice, warn
from .options import CommonOptions

if TYPE_CHECKING:
    from ..core.session import Session
    from ..core.target import Target
    from ..render.progress import Progress


def prepare(
    target_text: str,
    opts: CommonOptions,
    *,
    allowed_modes: tuple[str, ...] = OUTPUT_MODES,
) -> tuple[Target, Settings, Environment]:
    from .config import apply_config, target_names

    opts, resolved = apply_config(opts, target_text)
    target_text = resolved or target_text
    env = current_env()
    if opts.color != "auto":
        env.color = opts.color
    settings = build_settings(opts, env, allowed_modes=allowed_modes)
    settings = settings._replace(named_targets=target_names(opts.config))
    target = build_target(target_text, opts)
    return target, settings, env


@contextmanager
def session(
    target: Target, settings: Settings, env: Environment, progress: Progress | None = None
) -> Iterator[Session]:
    """The core session for target; failures inside carry it (core.hints reads it)."""
    from ..core.session import open_session

    if settings.channel.insecure and target.tls:
        warn(
            "--insecure: trusting whatever certificate the server presents "
            "(no protection against interception)",
            env,
        )
    stage = (
        progress.stage(f"getting a token for {target.address}…")
        if progress is not None
        else nullcontext()
    )
    with stage:
        sess = open_session(target, settings)
    for line in sess.plan.warnings:
        warn(line, env)
    for line in sess.plan.notices:
        notice(line, env)
    if settings.output.verbose:
        for line in sess.plan.quiet_notices:
            notice(line, env)
    with sess:
        yield sess
