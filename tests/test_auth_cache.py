"""The disk token cache: reuse across providers, modes, atomicity, corrupt/foreign files."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth import build_provider
from cloudrun_grpc_cli.core.auth.cache import CACHE_MARGIN, TokenCache, cache_root
from cloudrun_grpc_cli.core.auth.token import REFRESH_MARGIN, MintingProvider
from cloudrun_grpc_cli.settings import AuthSettings
from tests.support.issuer import Issuer, issuer_fixture  # noqa: F401

AUD = "https://svc-abc-uc.a.run.app"


@pytest.fixture
def key(issuer: Issuer, tmp_path: Path) -> Path:
    return issuer.write_service_account_key(tmp_path / "sa.json")


def get(auth: AuthSettings, audience: str = AUD) -> MintingProvider:
    provider, _ = build_provider(auth, audience)
    assert isinstance(provider, MintingProvider)
    provider.get()
    return provider


def tokens_dir(isolated_env: Path) -> Path:
    return isolated_env / "cache" / "crgrpc" / "tokens"


def test_cache_root_follows_xdg(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_root() == isolated_env / "cache" / "crgrpc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == isolated_env / ".cache" / "crgrpc"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_root() == isolated_env / ".cache" / "crgrpc"


def test_second_provider_makes_no_request(issuer: Issuer, key: Path) -> None:
    first = get(AuthSettings(key_file=key))
    assert issuer.count() == 1
    issuer.clear()
    second = get(AuthSettings(key_file=key))
    assert issuer.requests == []
    assert second.mints == 0
    assert second.get().value == first.get().value
    assert second.get().source == f"service-account key {key}"


def test_modes(key: Path, isolated_env: Path) -> None:
    get(AuthSettings(key_file=key))
    d = tokens_dir(isolated_env)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    [f] = list(d.iterdir())
    assert f.suffix == ".json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    data = json.loads(f.read_text())
    assert data["audience"] == AUD and data["header"] == "authorization"
    assert data["identity"].startswith("service_account:sa@test-project.iam.gserviceaccount.com:")


def test_loose_directory_is_tightened(key: Path, isolated_env: Path) -> None:
    d = tokens_dir(isolated_env)
    d.mkdir(parents=True)
    d.chmod(0o755)
    get(AuthSettings(key_file=key))
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_no_token_cache(issuer: Issuer, key: Path, isolated_env: Path) -> None:
    get(AuthSettings(key_file=key, token_cache=False))
    get(AuthSettings(key_file=key, token_cache=False))
    assert issuer.count("/token") == 2
    assert not tokens_dir(isolated_env).exists()


def test_keyed_by_audience_and_header(issuer: Issuer, key: Path, isolated_env: Path) -> None:
    get(AuthSettings(key_file=key))
    get(AuthSettings(key_file=key), "https://other.a.run.app")
    get(AuthSettings(key_file=key, serverless_auth=True))
    assert issuer.count("/token") == 3
    assert len(list(tokens_dir(isolated_env).iterdir())) == 3
    issuer.clear()
    get(AuthSettings(key_file=key, serverless_auth=True))
    assert issuer.requests == []


def test_keyed_by_identity(issuer: Issuer, key: Path, tmp_path: Path) -> None:
    get(AuthSettings(key_file=key))
    other = issuer.write_service_account_key(
        tmp_path / "other.json",
        "other@p.iam.gserviceaccount.com",
        key_name="other",
        key_id="other-1",
    )
    get(AuthSettings(key_file=other))
    assert issuer.count("/token") == 2


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"version": 1}',
        "\x00\xff garbage",
        '{"version": 1, "identity": "x", "audience": "y", '
        '"header": "authorization", "exp": 9999999999, '
        '"token": "not.a.jwt"}',
    ],
)
def test_corrupt_file_ignored(issuer: Issuer, key: Path, isolated_env: Path, content: str) -> None:
    first = get(AuthSettings(key_file=key))
    [f] = list(tokens_dir(isolated_env).iterdir())
    f.write_text(content)
    issuer.clear()
    second = get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 1
    assert second.get().value != "" and first.identity == second.identity
    assert json.loads(f.read_text())["token"] == second.get().value  # rewritten


def test_corrupt_token_with_matching_key_ignored(
    issuer: Issuer, key: Path, isolated_env: Path
) -> None:
    get(AuthSettings(key_file=key))
    [f] = list(tokens_dir(isolated_env).iterdir())
    data = json.loads(f.read_text())
    data["token"] = "garbage"
    f.write_text(json.dumps(data))
    issuer.clear()
    get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 1


def test_foreign_file_ignored(issuer: Issuer, key: Path, isolated_env: Path) -> None:
    get(AuthSettings(key_file=key))
    [f] = list(tokens_dir(isolated_env).iterdir())
    data = json.loads(f.read_text())
    data["identity"] = "someone else"
    f.write_text(json.dumps(data))
    issuer.clear()
    get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 1


def test_group_readable_file_ignored(issuer: Issuer, key: Path, isolated_env: Path) -> None:
    get(AuthSettings(key_file=key))
    [f] = list(tokens_dir(isolated_env).iterdir())
    f.chmod(0o644)
    issuer.clear()
    get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 1
    assert stat.S_IMODE(f.stat().st_mode) == 0o600  # replaced by a private one


def test_not_reused_within_five_minutes_of_expiry(
    issuer: Issuer, key: Path, isolated_env: Path
) -> None:
    issuer.lifetime = CACHE_MARGIN - 10  # minted fine, but never worth caching
    get(AuthSettings(key_file=key))
    get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 2
    assert not tokens_dir(isolated_env).exists() or not list(tokens_dir(isolated_env).iterdir())


def test_cached_token_close_to_expiry_is_reminted(
    issuer: Issuer, key: Path, isolated_env: Path
) -> None:
    get(AuthSettings(key_file=key))
    [f] = list(tokens_dir(isolated_env).iterdir())
    data = json.loads(f.read_text())
    data["exp"] = int(dt.datetime.now().timestamp()) + CACHE_MARGIN - 1
    f.write_text(json.dumps(data))
    issuer.clear()
    get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 1


def test_unusable_cache_directory_is_no_error(
    issuer: Issuer, key: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = isolated_env / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    get(AuthSettings(key_file=key))
    get(AuthSettings(key_file=key))
    assert issuer.count("/token") == 2


def test_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "t")
    assert cache.store("id", "aud", "authorization", "tok", 2**40)
    assert [p.name for p in (tmp_path / "t").iterdir()] == [
        TokenCache.key("id", "aud", "authorization") + ".json"
    ]
    assert cache.load("id", "aud", "Authorization") == "tok"
    assert cache.clear() == 1


def test_refresh_margin_is_google_auths() -> None:
    from google.auth import _helpers

    assert dt.timedelta(seconds=REFRESH_MARGIN) == _helpers.REFRESH_THRESHOLD
    assert CACHE_MARGIN == 300


def test_cache_hit_imports_no_google_auth(issuer: Issuer, key: Path) -> None:
    get(AuthSettings(key_file=key))
    issuer.clear()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from cloudrun_grpc_cli.core.auth import plan_auth\n"
        "from cloudrun_grpc_cli.core.target import parse_target\n"
        "from cloudrun_grpc_cli.settings import AuthSettings, ChannelSettings\n"
        f"plan = plan_auth(parse_target({AUD!r}), ChannelSettings(),"
        f" AuthSettings(key_file=Path({str(key)!r})))\n"
        "[(name, value)] = plan.metadata()\n"
        "assert name == 'authorization' and value.startswith('Bearer eyJ'), name\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('google', 'requests', 'urllib3')))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"
    assert issuer.requests == []


def test_refresh_margin_scales_with_the_lifetime() -> None:
    from cloudrun_grpc_cli.core.auth.token import IdToken, refresh_margin

    def token(iat: int, exp: int) -> IdToken:
        return IdToken("x.y.z", {}, {"iat": iat, "exp": exp}, "test")

    assert refresh_margin(token(1000, 1000 + 3600)) == 225  # google-auth's margin for an hour
    assert refresh_margin(token(1000, 1015)) == 3.75  # a 15 s token is used for 11 s
    assert refresh_margin(token(1000, 1900)) == 225
    assert refresh_margin(token(1000, 1800)) == 200
    assert refresh_margin(IdToken("x.y.z", {}, {"exp": 2000}, "test")) == 225  # no iat


def test_a_short_lived_token_is_reused_not_minted_per_use(issuer: Issuer, tmp_path: Path) -> None:
    issuer.lifetime = 15
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    from cloudrun_grpc_cli.core.auth import build_provider
    from cloudrun_grpc_cli.settings import AuthSettings

    provider, _ = build_provider(AuthSettings(key_file=key, token_cache=False), "https://short.example")
    assert provider is not None
    first = provider.get()
    for _ in range(20):
        assert provider.get() is first
    assert issuer.count("/token") == 1
