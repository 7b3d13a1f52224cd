"""An explicit cache directory (Environment.cache_dir → Settings.cache_dir): the token cache
and the schema cache use it instead of $XDG_CACHE_HOME/crgrpc, with no environment variable."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from cloudrun_grpc_cli.cli.main import main
from cloudrun_grpc_cli.render.env import Environment
from tests.support.cli import Result
from tests.support.issuer import Issuer, issuer_fixture  # noqa: F401
from tests.support.servers import echo_server
from tests.support.tls import make_certs

AUD = "https://echo-abc-uc.a.run.app"


def run_in(cache_dir: Path | None, *argv: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out, stderr=err, stdin=io.StringIO(), stdout_isatty=False, stderr_isatty=False,
        stdin_isatty=False, color="never", cache_dir=cache_dir,
    )
    code = main(list(argv), env=env)
    return Result(code, out.getvalue(), err.getvalue())


def cached_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root).parent) for p in root.rglob("*.json"))


def test_token_print_uses_the_given_cache_dir(issuer: Issuer, tmp_path: Path, isolated_env: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    mine = tmp_path / "mine"
    argv = ("token", "print", "--audience", AUD, "--key-file", str(key))

    first = run_in(mine, *argv)
    second = run_in(mine, *argv)
    assert (first.code, first.stderr, second.code, second.stderr) == (0, "", 0, "")
    assert second.stdout == first.stdout
    assert issuer.count("/token") == 1  # the second run read the token from mine/tokens
    assert cached_files(mine) == ["tokens"]
    (token_file,) = (mine / "tokens").glob("*.json")
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(mine / "tokens").st_mode) == 0o700
    assert os.environ["XDG_CACHE_HOME"] == str(isolated_env / "cache")
    assert not (isolated_env / "cache").exists()

    # Without one, the default ($XDG_CACHE_HOME/crgrpc) is used: nothing cached there yet.
    third = run_in(None, *argv)
    assert third.code == 0
    assert issuer.count("/token") == 2
    assert cached_files(isolated_env / "cache" / "crgrpc") == ["tokens"]
    assert cached_files(mine) == ["tokens"]


def test_list_caches_token_and_schema_in_the_given_cache_dir(
    issuer: Issuer, tmp_path: Path, isolated_env: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    certs = make_certs(tmp_path / "tls")
    mine = tmp_path / "mine"
    with echo_server(tls=certs) as server:
        argv = ("list", f"localhost:{server.port}", "--cacert", str(certs.ca), "--key-file", str(key))
        for _ in range(2):
            r = run_in(mine, *argv)
            assert (r.code, r.stdout, r.stderr) == (
                0,
                '{"service":"echo.EchoServer"}\n'
                '{"service":"grpc.reflection.v1alpha.ServerReflection"}\n',
                "",
            )
    assert issuer.count("/token") == 1
    assert cached_files(mine) == ["schema", "tokens"]
    assert not (isolated_env / "cache").exists()
