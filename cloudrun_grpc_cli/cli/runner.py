"""Shared steps of list, describe and call: settings, session, protoset-out, notices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import RpcStatusError
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
    timeout: float | None = None,
) -> tuple[Target, Settings, Environment]:
    from .config import apply_config

    opts, resolved = apply_config(opts, target_text)
    target_text = resolved or target_text
    env = current_env()
    if opts.color != "auto":
        env.color = opts.color
    settings = build_settings(opts, env, allowed_modes=allowed_modes, timeout=timeout)
    target = build_target(target_text, opts)
    return target, settings, env


@contextmanager
def session(
    target: Target, settings: Settings, env: Environment, progress: Progress | None = None
) -> Iterator[Session]:
    from ..core.session import open_session

    if settings.channel.insecure and target.tls:
        warn(
            "--insecure: trusting whatever certificate the server presents "
            "(no protection against interception)",
            env,
        )
    if progress is not None:
        with progress.stage(f"minting a token and connecting to {target.address}…"):
            sess = open_session(target, settings)
    else:
        sess = open_session(target, settings)
    for line in sess.plan.notices:
        notice(line, env)
    try:
        yield sess
        if settings.schema.protoset_out is not None:
            from ..core.schema import write_protoset

            write_protoset(sess.schema(), settings.schema.protoset_out)
    except RpcStatusError as e:  # on reflection too: explain 401/403 from what was sent
        from .diagnose import diagnose_error

        diagnose_error(e, sess, settings)
        raise
    finally:
        sess.close()
