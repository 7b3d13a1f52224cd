"""The crgrpc application and the one place that turns errors into exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from .. import __version__
from ..errors import CrgrpcError, ExitCode, UsageError
from ..render.env import Environment
from .console import SINK, active_sink, current_env, pop_env, print_error, push_env
from .entry import end_startup

HELP = """A gRPC client for services behind Google Cloud Run's authentication.

Discovers services by reflection, mints a Google-signed ID token for the
right audience, and attaches it to every call (reflection included).

Examples:

\b
  crgrpc list https://echo-abc-uc.a.run.app --key-file sa.json
  crgrpc call https://echo-abc-uc.a.run.app SayHello -d '{"name": "x"}'
  crgrpc call run://us-central1/echo SayHello -d '{"name": "x"}'
  crgrpc doctor run://us-central1/echo
  crgrpc demo
"""

app = typer.Typer(
    name="crgrpc",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        current_env().stdout.write(f"crgrpc {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version_callback,
        is_eager=True,
    ),
) -> None:
    """crgrpc: gRPC for Cloud Run, with Google ID tokens."""


# Command → the module that registers it. Only the module of the command being
# run is imported and built (Click builds every registered command on start).
_MODULES = {
    "list": "discover",
    "describe": "discover",
    "call": "call",
    "doctor": "doctor",
    "bench": "bench_cmd",
    "proxy": "proxy_cmd",
    "token": "token",
    "serve": "serve",
    "demo": "demo_cmd",
    "config": "config_cmd",
}
_ORDER = (
    "discover", "call", "doctor", "proxy_cmd", "bench_cmd", "token", "serve", "demo_cmd", "config_cmd",
)
_registered: set[str] = set()


def _register(args: Sequence[str] | None = None) -> None:
    """Register the command named in args, or all of them (help, completion)."""
    import importlib

    name = _command_name(args)
    wanted: Sequence[str]
    if os.environ.get("_CRGRPC_COMPLETE"):
        wanted = _ORDER
    elif name in _MODULES:
        wanted = (_MODULES[name],)
    elif name is None and "--version" in (args or ()):
        wanted = ()  # the version is printed before any command is looked at
    else:
        wanted = _ORDER  # the group's help lists every command
    for module in _ORDER:
        if module in wanted and module not in _registered:
            importlib.import_module(f"{__package__}.{module}").register(app)
            _registered.add(module)


def _command_name(args: Sequence[str] | None) -> str | None:
    return next((a for a in args or () if not a.startswith("-")), None)


def _silence_grpc(argv: Sequence[str]) -> None:
    """gRPC's C-core logs to stderr; only --debug may let it through."""
    if "--debug" in argv:
        os.environ.setdefault("GRPC_VERBOSITY", "DEBUG" if os.environ.get("GRPC_TRACE") else "INFO")
    else:
        os.environ["GRPC_VERBOSITY"] = "NONE"
        os.environ.pop("GRPC_TRACE", None)
        os.environ.setdefault("GLOG_minloglevel", "3")


def _usage_error(e: typer.TyperException) -> UsageError:
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else "crgrpc"
    message = _bad_parameter(e) or e.format_message().strip()
    first = message.splitlines()[0] if message else "invalid usage"
    return UsageError(first[0].lower() + first[1:] if first else first, f"run '{path} --help'")


def _bad_parameter(e: typer.TyperException) -> str | None:
    """A bad option value, named as the user gave it: the flag, or its CRGRPC_* variable."""
    param, ctx = getattr(e, "param", None), getattr(e, "ctx", None)
    if not isinstance(e, typer.BadParameter) or e.param_hint is not None or param is None:
        return None
    is_option = param.param_type_name == "option" and param.opts
    flag = max(param.opts, key=len) if is_option else param.human_readable_name
    source = ctx.get_parameter_source(param.name) if ctx is not None and param.name else None
    if getattr(source, "name", None) == "ENVIRONMENT" and isinstance(param.envvar, str):
        return f"invalid value for {param.envvar} ({flag}): {e.message}"
    return f"invalid value for '{flag}': {e.message}"


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run crgrpc with argv; return the exit code (tests call this directly)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _silence_grpc(args)
    env = env or Environment()
    env_token = push_env(env)
    sink_token = SINK.set(None)
    debug = "--debug" in args
    _register(args)
    shows = {"--show-completion", "--install-completion"} & {a.split("=")[0] for a in args}
    if shows or os.environ.get("_CRGRPC_COMPLETE", "").startswith("source"):
        from .clickcompat import use_completion_scripts

        use_completion_scripts()  # ours (cli/completion_scripts.py), not typer's
    command = typer.main.get_command(app)
    if os.environ.get("_CRGRPC_COMPLETE"):
        # Shell completion: Click's own machinery answers and exits.
        try:
            command.main(args=args, prog_name="crgrpc")
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else 0
        finally:
            SINK.reset(sink_token)
            pop_env(env_token)
        return 0
    try:
        from .habits import check

        check(args, list(_MODULES))  # grpcurl habits get what to type, not Click's words
        # What Click's main() does, minus its handling of errors and EPIPE
        # (it would exit 1 on a closed pipe): errors are ours to map.
        with command.make_context("crgrpc", args) as ctx:
            if _command_name(args) != "call":  # call: once its method is resolved
                end_startup()
            command.invoke(ctx)
        return 0
    except typer.Exit as e:
        return int(e.exit_code)
    except CrgrpcError as e:
        # The error boundary: hints once (core.hints), no request secret
        # (core.auth.scrub), the sink's document, the error line.
        from ..core.hints import explain

        explain(e)
        _scrubbed(e)
        # A reader that went away (of the document, or of stderr's error line)
        # ends the command quietly with 141, as SIGPIPE would have.
        if not _report(e):
            _quiet_stdout(env)
            return ExitCode.PIPE_CLOSED
        try:
            print_error(e, env)
        except BrokenPipeError:
            return ExitCode.PIPE_CLOSED
        if debug:
            _print_traceback(env)
        return int(e.exit_code)
    except typer.TyperException as e:
        from .clickcompat import is_no_args_help

        if is_no_args_help(e):
            env.stdout.write(e.format_message() + "\n")
            return 0
        err = _usage_error(e)
        print_error(err, env)
        return int(getattr(e, "exit_code", ExitCode.USAGE) or ExitCode.USAGE)
    except (KeyboardInterrupt, typer.Abort):
        _report(None)
        _quiet_stdout(env)
        env.stderr.write("error: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout(env)
        return ExitCode.PIPE_CLOSED
    except Exception as e:
        print_error(
            _scrubbed(
                CrgrpcError(
                    f"internal error: {type(e).__name__}: {e}",
                    "this is a bug in crgrpc; rerun with --debug and report it",
                )
            ),
            env,
        )
        if debug:
            _print_traceback(env)
        return ExitCode.INTERNAL
    finally:
        end_startup()
        SINK.reset(sink_token)
        pop_env(env_token)


def _report(err: CrgrpcError | None) -> bool:
    """Write the failure into the running command's sink (its document), if any;
    False when its reader has gone (a closed pipe)."""
    sink = active_sink()
    if sink is None:
        return True
    from ..render.sinks import failure_of, interrupted

    SINK.set(None)
    try:
        sink.fail(failure_of(err) if err is not None else interrupted())
        sink.finish()
    except BrokenPipeError:
        return False
    except (OSError, ValueError):
        pass
    return True


def _scrubbed(err: CrgrpcError) -> CrgrpcError:
    """err with no request secret in its message or hints (core.auth.scrub's rule)."""
    from ..core.auth.scrub import scrub

    err.message = scrub(err.message)
    err.hints = tuple(scrub(h) for h in err.hints)
    return err


def _print_traceback(env: Environment) -> None:
    import traceback

    from ..core.auth.scrub import scrub

    # No locals, ever: they could hold tokens; and what google-auth's exceptions
    # quote of an endpoint's answer is scrubbed like every error message.
    env.stderr.write(scrub(traceback.format_exc()))


def _quiet_stdout(env: Environment) -> None:
    """After the reader went away, make the final flush at exit harmless."""
    if env.stdout is sys.stdout:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def run() -> None:
    """Console-script entry point.

    Ends the process with os._exit once output is flushed: gRPC's teardown at
    interpreter exit can block on its own threads (seen after a call cancelled
    from the request-stream thread), and a CLI has nothing left to clean up.

    Interrupted (Ctrl-C, exit code 130), it ends by SIGINT itself, the way the
    shell expects of a program the user stopped: `for …; do crgrpc …; done`
    then stops at once, as with grpcurl, and the shell still reports 130. An
    exit(130) would only tell the shell that crgrpc failed, and the loop would
    go on. (main() returns 130 to the tests that call it in-process.)
    """
    try:
        code = main()
    except KeyboardInterrupt:  # between main()'s own handlers (start-up, teardown)
        sys.stderr.write("error: interrupted\n")
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:  # stderr's reader went away too (`2>&1 | head`)
        _quiet_stdout(Environment())
        code = ExitCode.PIPE_CLOSED
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            if stream is sys.stdout and code == 0:
                code = ExitCode.PIPE_CLOSED
        except (OSError, ValueError):
            pass
    if code == ExitCode.INTERRUPTED:
        _die_of_sigint()
    os._exit(code)


def _die_of_sigint() -> None:
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.kill(os.getpid(), signal.SIGINT)  # delivered before kill returns: the process ends
    except (OSError, ValueError, AttributeError):
        pass  # no signals here: os._exit(130) says the same to the shell
