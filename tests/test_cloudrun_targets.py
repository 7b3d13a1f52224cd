"""`run://` targets (issue 13): every form, every place project and region come from,
the Admin API's 404/401/403, the resolution cache, and the access token of each source.

The Admin API v2 stand-in (tests/support/runapi.py) answers services.get from fixtures
and takes only access tokens the local issuer issued (minted for real by google-auth);
the service it describes is the TLS Echo service, whose token check wants the
service's uri as the audience, as Cloud Run does.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.issuer import (  # noqa: F401
    DEFAULT_SA,
    KEY_SA,
    TARGET_SA,
    USER_CLIENT_ID,
    USER_EMAIL,
    Issuer,
    issuer_fixture,
)
from tests.support.oracle import bearer, google_verified
from tests.support.proxy import ProxyProcess
from tests.support.runapi import (  # noqa: F401
    PROJECT,
    REGION,
    RUN,
    CloudRun,
    cloud_run_fixture,
    run_certs_fixture,
)

DATA = '{"name": "x"}'
HELLO = {"message": "Hello x from K_REVISION local"}
GET = f"/v2/projects/{PROJECT}/locations/{REGION}/services/echo"
TRIED = "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server"


def call(cr: CloudRun, target: str, *args: str) -> object:
    return run("call", target, "SayHello", "-d", DATA, *cr.args(), *args)


def gcloud_config(home: Path, name: str, text: str, *, active: bool = True) -> Path:
    """A gcloud configuration under the isolated CLOUDSDK_CONFIG."""
    root = home / "gcloud"
    (root / "configurations").mkdir(parents=True, exist_ok=True)
    path = root / "configurations" / f"config_{name}"
    path.write_text(text)
    if active:
        (root / "active_config").write_text(name + "\n")
    return path


# --- the forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "extra"),
    [
        (f"run://{PROJECT}/{REGION}/echo", []),
        (f"run://{REGION}/echo", ["--project", PROJECT]),
        ("run://echo", ["--project", PROJECT, "--region", REGION]),
    ],
)
def test_each_form_resolves_and_calls(cloud_run: CloudRun, target: str, extra: list[str]) -> None:
    r = call(cloud_run, target, *extra, "-o", "full")
    assert (r.code, r.stderr) == (0, ""), r
    doc = r.json
    assert doc["messages"] == [HELLO]
    assert doc["token"]["aud"] == cloud_run.uri  # the service's uri is the audience
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]
    # the Admin API was asked with an access token the issuer issued for the key's account
    auth = cloud_run.api.requests[0].headers["authorization"]
    assert cloud_run.issuer.access_tokens[bearer(auth)] == KEY_SA
    sent = cloud_run.recorder.headers_for("SayHello")[-1]["authorization"]
    claims = google_verified(bearer(sent), audience=cloud_run.uri, certs_url=cloud_run.issuer.certs_url)
    assert claims["email"] == KEY_SA


def test_the_target_beats_the_flags(cloud_run: CloudRun) -> None:
    r = call(cloud_run, RUN, "--project", "other-project", "--region", "europe-west1")
    assert (r.code, r.stdout, r.stderr) == (0, json.dumps(HELLO, separators=(",", ":")) + "\n", "")
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]


@pytest.mark.parametrize(
    ("target", "message", "hint"),
    [
        ("run://Echo", "invalid Cloud Run service name 'Echo' in target 'run://Echo'",
         "a service name is lowercase letters, digits and hyphens, starting with a letter"),
        ("run://a/b/c/echo", "invalid target 'run://a/b/c/echo'",
         "write run://SERVICE, run://REGION/SERVICE or run://PROJECT/REGION/SERVICE"),
        ("run://echo/", "invalid target 'run://echo/'",
         "write run://SERVICE, run://REGION/SERVICE or run://PROJECT/REGION/SERVICE"),
        ("run://central/echo", "invalid Cloud Run region 'central' in target 'run://central/echo'",
         "a region is like us-central1 or europe-west1"),
        ("run://P!/us-central1/echo", "invalid project 'P!' in target 'run://P!/us-central1/echo'",
         "a project is a project ID (like my-project-123) or a project number"),
    ],
)
def test_bad_run_targets_exit_2(target: str, message: str, hint: str) -> None:
    r = run("call", target, "SayHello")
    assert (r.code, r.stdout, r.stderr) == (2, "", f"error: {message}\nhint: {hint}\n")


def test_plaintext_conflicts_with_run() -> None:
    r = run("list", RUN, "--plaintext")
    assert (r.code, r.stderr) == (
        2,
        f"error: --plaintext conflicts with the run:// target '{RUN}': Cloud Run serves TLS\n"
        "hint: drop --plaintext\n",
    )


def test_bad_region_flag_exit_2() -> None:
    r = run("call", "run://echo", "SayHello", "--project", PROJECT, "--region", "mars")
    assert (r.code, r.stderr) == (
        2, "error: invalid Cloud Run region 'mars' (--region)\nhint: a region is like us-central1 or europe-west1\n"
    )


def test_bad_run_api_exit_2(cloud_run: CloudRun) -> None:
    r = run("call", RUN, "SayHello", "--key-file", str(cloud_run.key), "--run-api", "ftp://x")
    assert (r.code, r.stderr) == (
        2,
        "error: invalid --run-api 'ftp://x': not an http(s) URL\n"
        "hint: give the Admin API's base URL, like https://run.googleapis.com\n",
    )


# --- where project and region come from -----------------------------------------------------


def _flags(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    return ["--project", PROJECT, "--region", REGION]


def _crgrpc_env(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    mp.setenv("CRGRPC_PROJECT", PROJECT)
    mp.setenv("CRGRPC_REGION", REGION)
    return []


def _config_defaults(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    path = home / "config" / "crgrpc" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[defaults]\nproject = "{PROJECT}"\nregion = "{REGION}"\n')
    return []


def _cloudsdk_env(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    mp.setenv("CLOUDSDK_CORE_PROJECT", PROJECT)
    mp.setenv("CLOUDSDK_RUN_REGION", REGION)
    return []


def _active_configuration(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    gcloud_config(home, "default", "[core]\nproject = wrong-project\n", active=False)
    gcloud_config(home, "work", f"[core]\naccount = me@example.com\nproject = {PROJECT}\n\n[run]\nregion = {REGION}\n")
    return []


def _default_configuration(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    gcloud_config(home, "default", f"[core]\nproject = {PROJECT}\n[run]\nregion = {REGION}\n", active=False)
    return []


def _active_config_variable(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    gcloud_config(home, "other", "[core]\nproject = wrong-project\n")
    gcloud_config(home, "ci", f"[core]\nproject = {PROJECT}\n[run]\nregion = {REGION}\n", active=False)
    mp.setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "ci")
    return []


def _mixed(home: Path, mp: pytest.MonkeyPatch) -> list[str]:
    """Project from the flag, region from the active gcloud configuration."""
    gcloud_config(home, "default", f"[core]\nproject = wrong-project\n[run]\nregion = {REGION}\n")
    return ["--project", PROJECT]


FALLBACKS = {
    "--project/--region": _flags,
    "CRGRPC_PROJECT/CRGRPC_REGION": _crgrpc_env,
    "config file": _config_defaults,
    "CLOUDSDK_CORE_PROJECT/CLOUDSDK_RUN_REGION": _cloudsdk_env,
    "active gcloud configuration": _active_configuration,
    "gcloud's default configuration": _default_configuration,
    "CLOUDSDK_ACTIVE_CONFIG_NAME": _active_config_variable,
    "flag and gcloud configuration": _mixed,
}


@pytest.mark.parametrize("name", list(FALLBACKS))
def test_project_and_region_fallbacks(
    name: str, cloud_run: CloudRun, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = FALLBACKS[name](isolated_env, monkeypatch)
    r = call(cloud_run, "run://echo", *extra)
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]


def test_named_target_with_project_and_region(cloud_run: CloudRun, isolated_env: Path) -> None:
    path = isolated_env / "config" / "crgrpc" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[targets.prod]\naddress = "run://echo"\nproject = "{PROJECT}"\nregion = "{REGION}"\n')
    r = call(cloud_run, "prod")
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])


def test_flags_beat_gcloud(cloud_run: CloudRun, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "wrong-project")
    gcloud_config(isolated_env, "default", "[core]\nproject = wrong-project\n[run]\nregion = europe-west1\n")
    monkeypatch.setenv("CRGRPC_REGION", REGION)
    r = call(cloud_run, "run://echo", "--project", PROJECT)
    assert (r.code, r.stderr) == (0, "")
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]


def test_cloudsdk_variable_beats_the_configuration(
    cloud_run: CloudRun, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcloud_config(isolated_env, "default", f"[core]\nproject = wrong-project\n[run]\nregion = {REGION}\n")
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", PROJECT)
    r = call(cloud_run, "run://echo")
    assert (r.code, r.stderr) == (0, "")


MISSING_BOTH = (
    "error: run://echo: no project and no region for the Cloud Run service echo\n"
    "hint: give the project in the target (run://PROJECT/REGION/SERVICE) or with --project, "
    "or set gcloud's: gcloud config set project PROJECT\n"
    "hint: give the region in the target (run://REGION/SERVICE) or with --region, "
    "or set gcloud's: gcloud config set run/region REGION\n"
)


@pytest.mark.parametrize("command", [["call", "run://echo", "SayHello"], ["list", "run://echo"], ["describe", "run://echo"], ["token", "print", "run://echo"], ["doctor", "run://echo"]])
def test_missing_project_and_region_exit_2(command: list[str], cloud_run: CloudRun) -> None:
    args = cloud_run.args() if command[0] != "token" else ["--key-file", str(cloud_run.key), "--run-api", cloud_run.api.url]
    r = run(*command, *args)
    assert (r.code, r.stdout, r.stderr) == (2, "", MISSING_BOTH)
    assert cloud_run.api.requests == [] and cloud_run.issuer.requests == []


def test_missing_region_only(cloud_run: CloudRun, isolated_env: Path) -> None:
    gcloud_config(isolated_env, "default", f"[core]\nproject = {PROJECT}\n")
    r = call(cloud_run, "run://echo")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        "error: run://echo: no region for the Cloud Run service echo\n"
        "hint: give the region in the target (run://REGION/SERVICE) or with --region, "
        "or set gcloud's: gcloud config set run/region REGION\n"
    )


def test_missing_project_only(cloud_run: CloudRun) -> None:
    r = call(cloud_run, f"run://{REGION}/echo")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        f"error: run://{REGION}/echo: no project for the Cloud Run service echo\n"
        "hint: give the project in the target (run://PROJECT/REGION/SERVICE) or with --project, "
        "or set gcloud's: gcloud config set project PROJECT\n"
    )


# --- 404, 401, 403, unreachable ---------------------------------------------------------------


def test_not_found_exit_4(cloud_run: CloudRun) -> None:
    r = call(cloud_run, f"run://{PROJECT}/{REGION}/nope")
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr == (
        f"error: the Cloud Run service nope (project {PROJECT}, region {REGION}) does not exist "
        f"(HTTP 404: Resource 'nope' of kind 'SERVICE' in region '{REGION}' in project '{PROJECT}' "
        "does not exist.)\n"
        f"hint: list the services: gcloud run services list --region {REGION} --project {PROJECT}\n"
        "hint: check the project and region (run://PROJECT/REGION/SERVICE, --project, --region)\n"
    )
    assert cloud_run.recorder.calls == []  # nothing was dialed


def test_not_found_in_full_mode_is_one_document(cloud_run: CloudRun) -> None:
    r = call(cloud_run, f"run://{PROJECT}/{REGION}/nope", "-o", "full")
    assert r.code == 4
    doc = r.json
    assert doc["status"]["name"] == "UNAVAILABLE"
    assert doc["error"]["exit_code"] == 4
    assert doc["error"]["hints"][0] == f"list the services: gcloud run services list --region {REGION} --project {PROJECT}"


DENIED_HINTS = (
    f"hint: reading the service needs roles/run.viewer (run.services.get): gcloud run services "
    f"add-iam-policy-binding echo --region {REGION} --project {PROJECT} "
    f"--member=serviceAccount:{KEY_SA} --role=roles/run.viewer\n"
    "hint: or pass the service's URL (https://…run.app) as TARGET: that needs no Admin API\n"
)


def test_forbidden_exit_3(cloud_run: CloudRun) -> None:
    cloud_run.api.viewers = {"someone-else@example.com"}
    r = call(cloud_run, RUN)
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        f"error: {KEY_SA} may not read the Cloud Run service echo (project {PROJECT}, region "
        f"{REGION}) (HTTP 403: Permission 'run.services.get' denied on resource "
        f"'namespaces/{PROJECT}/services/echo' (or resource may not exist).)\n" + DENIED_HINTS
    )
    assert cloud_run.recorder.calls == []


def test_unauthenticated_exit_3(cloud_run: CloudRun) -> None:
    cloud_run.api.access_tokens = {}  # the stand-in no longer knows the issuer's tokens
    r = call(cloud_run, RUN)
    assert r.code == 3
    assert r.stderr.startswith(
        f"error: {KEY_SA} may not read the Cloud Run service echo (project {PROJECT}, region "
        f"{REGION}) (HTTP 401: Request had invalid authentication credentials."
    )
    assert r.stderr.endswith(DENIED_HINTS)


def test_admin_api_unreachable_exit_4(cloud_run: CloudRun) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run("call", RUN, "SayHello", "--key-file", str(cloud_run.key), "--run-api", f"http://127.0.0.1:{port}")
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr == (
        f"error: cannot reach the Cloud Run Admin API at http://127.0.0.1:{port}: connection refused\n"
        "hint: check the network and any proxy (--proxy, https_proxy), or point --run-api at a "
        "reachable Admin API endpoint\n"
        "hint: or pass the service's URL (https://…run.app) as TARGET: that needs no Admin API\n"
    )


def test_no_credentials_exit_3(cloud_run: CloudRun) -> None:
    r = run("call", RUN, "SayHello", *cloud_run.args(key=False))
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        f"error: {RUN}: the Cloud Run Admin API needs Google credentials; none found (tried: {TRIED})\n"
        "hint: pass --key-file, --impersonate-service-account or --token, or run "
        "`gcloud auth application-default login`\n"
        "hint: or pass the service's URL (https://…run.app) as TARGET: that needs no Admin API\n"
    )


def test_service_without_url_exit_4(cloud_run: CloudRun) -> None:
    cloud_run.api.services[cloud_run.name]["uri"] = ""
    r = call(cloud_run, RUN)
    assert (r.code, r.stderr) == (
        4,
        f"error: the Cloud Run service echo (project {PROJECT}, region {REGION}) has no URL yet\n"
        "hint: the service is still being created: try again when it is ready\n",
    )


# --- the cache ----------------------------------------------------------------------------------


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "cache" / "crgrpc" / "run").glob("*.json"))


def test_second_call_makes_no_admin_api_request(cloud_run: CloudRun, isolated_env: Path) -> None:
    first = call(cloud_run, RUN)
    second = call(cloud_run, RUN)
    assert (first.code, second.code) == (0, 0)
    assert first.lines == second.lines == [HELLO]
    assert cloud_run.api.count() == 1
    assert cloud_run.issuer.id_tokens == 1  # the ID token is cached too
    # neither the cached resolution nor the ID token needed an access token the second time
    assert cloud_run.issuer.count("/token") == 2
    files = _cache_files(isolated_env)
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    doc = json.loads(files[0].read_text())
    assert doc["service"] == {
        "name": cloud_run.name, "uri": cloud_run.uri, "urls": [cloud_run.uri],
    }
    assert "SECRET_ENV" not in files[0].read_text()  # the template is never cached


def test_the_cache_is_per_identity(cloud_run: CloudRun, tmp_path: Path) -> None:
    other = cloud_run.issuer.write_service_account_key(tmp_path / "other.json", TARGET_SA, key_name="other", key_id="other-1")
    cloud_run.check.allowed_emails = frozenset({KEY_SA, TARGET_SA})
    assert call(cloud_run, RUN).code == 0
    r = run("call", RUN, "SayHello", "-d", DATA, "--cacert", str(cloud_run.certs.ca), "--run-api", cloud_run.api.url, "--key-file", str(other))
    assert (r.code, r.lines) == (0, [HELLO])
    assert cloud_run.admin_requests() == [(GET, KEY_SA), (GET, TARGET_SA)]
    assert call(cloud_run, RUN).code == 0
    assert cloud_run.api.count() == 2


def test_a_stale_entry_is_asked_again(cloud_run: CloudRun, isolated_env: Path) -> None:
    assert call(cloud_run, RUN).code == 0
    path = _cache_files(isolated_env)[0]
    doc = json.loads(path.read_text())
    doc["created"] = time.time() - 301  # older than 5 minutes
    path.write_text(json.dumps(doc))
    assert call(cloud_run, RUN).code == 0
    assert cloud_run.api.count() == 2


def test_a_foreign_cache_file_is_ignored(cloud_run: CloudRun, isolated_env: Path) -> None:
    assert call(cloud_run, RUN).code == 0
    path = _cache_files(isolated_env)[0]
    os.chmod(path, 0o644)
    assert call(cloud_run, RUN).code == 0
    assert cloud_run.api.count() == 2


def test_audience_flag_keeps_its_value(cloud_run: CloudRun) -> None:
    custom = "https://echo.example.com"
    cloud_run.service(custom_audiences=[custom])
    cloud_run.check.audience = custom
    r = call(cloud_run, RUN, "--audience", custom, "-o", "full")
    assert (r.code, r.stderr) == (0, "")
    assert r.json["token"]["aud"] == custom


# --- every command -----------------------------------------------------------------------------


def test_list_and_describe(cloud_run: CloudRun) -> None:
    r = run("list", RUN, *cloud_run.args())
    assert (r.code, r.stderr) == (0, "")
    assert r.lines == [{"service": "echo.EchoServer"}, {"service": "grpc.reflection.v1alpha.ServerReflection"}]
    d = run("describe", RUN, "echo.EchoRequest", *cloud_run.args())
    assert (d.code, d.stderr) == (0, "")
    assert d.lines[0]["symbol"] == "echo.EchoRequest"
    assert cloud_run.api.count() == 1  # describe read the cache list wrote


def test_token_print_and_show(cloud_run: CloudRun) -> None:
    r = run("token", "print", RUN, "--key-file", str(cloud_run.key), "--run-api", cloud_run.api.url)
    assert (r.code, r.stderr) == (0, "")
    claims = google_verified(r.stdout.strip(), audience=cloud_run.uri, certs_url=cloud_run.issuer.certs_url)
    assert claims["email"] == KEY_SA
    s = run("token", "show", RUN, "--key-file", str(cloud_run.key), "--run-api", cloud_run.api.url, "-o", "json")
    assert (s.code, s.json["audience"], s.json["email"]) == (0, cloud_run.uri, KEY_SA)
    assert cloud_run.api.count() == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bench(cloud_run: CloudRun, workers: str) -> None:
    # Two workers are spawned processes: they get the resolved service, and ask
    # the Admin API nothing themselves.
    r = run("bench", RUN, "SayHello", "-d", DATA, "-n", "20", "--workers", workers, "-o", "json", *cloud_run.args())
    assert (r.code, r.stderr) == (0, ""), r
    assert (r.json["method"], r.json["total"], r.json["ok"], r.json["status"]) == (
        "echo.EchoServer/SayHello", 20, 20, {"OK": 20}
    )
    calls = cloud_run.recorder.headers_for("/SayHello")
    assert len(calls) == 20
    (token,) = {bearer(md.get("authorization")) for md in calls}
    assert cloud_run.issuer.id_tokens == 1  # minted once: the workers take it from the token cache
    claims = google_verified(token, audience=cloud_run.uri, certs_url=cloud_run.issuer.certs_url)
    assert claims["email"] == KEY_SA
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]


def test_proxy(cloud_run: CloudRun, tmp_path: Path) -> None:
    # The proxy resolves the service once, at start, and relays to its URL with
    # ID tokens for it; the client brings no credentials.
    with ProxyProcess(RUN, *cloud_run.args(), "--port", "0", "-o", "json", home=tmp_path) as p:
        r = run("call", "--plaintext", p.address, "SayHello", "-d", DATA)
        assert (r.code, r.stdout, r.stderr) == (0, json.dumps(HELLO, separators=(",", ":")) + "\n", ""), p.stderr
        assert p.stop() == 0
    listening = p.events("listening")[0]
    assert (listening["target"], listening["tls"]) == (f"localhost:{cloud_run.port}", True)
    (md,) = cloud_run.recorder.headers_for("/SayHello")
    claims = google_verified(bearer(md.get("authorization")), audience=cloud_run.uri, certs_url=cloud_run.issuer.certs_url)
    assert claims["email"] == KEY_SA
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]


def test_config_show_names_the_run_target() -> None:
    r = run("config", "show", RUN, "-o", "json")
    assert r.code == 0
    assert (r.json["address"], r.json["tls"], r.json["audience"]) == (RUN, True, None)


# --- the access token of each source --------------------------------------------------------------


def _key(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    return ["--key-file", str(cr.key)], KEY_SA


def _adc_service_account(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(cr.issuer.write_service_account_key(tmp / "adc.json")))
    return [], KEY_SA


def _adc_authorized_user(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    cr.issuer.write_authorized_user(adc)
    return ["--auth"], USER_EMAIL


def _adc_impersonated(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    cr.issuer.write_impersonated_adc(adc, TARGET_SA)
    return ["--include-email"], TARGET_SA


def _adc_external(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    path = cr.issuer.write_external_account(tmp / "wif.json", tmp / "oidc.txt", TARGET_SA)
    mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return ["--include-email"], TARGET_SA


def _impersonate(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    args = ["--key-file", str(cr.key), "--impersonate-service-account", TARGET_SA]
    return [*args, "--iam-endpoint", cr.issuer.url, "--include-email"], TARGET_SA


def _metadata(cr: CloudRun, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str]:
    mp.setenv("GCE_METADATA_HOST", cr.issuer.host)
    mp.setenv("GCE_METADATA_IP", cr.issuer.host)
    return [], DEFAULT_SA


ACCESS = {
    "key file": _key,
    "ADC service_account": _adc_service_account,
    "ADC authorized_user": _adc_authorized_user,
    "ADC impersonated_service_account": _adc_impersonated,
    "ADC external_account": _adc_external,
    "--impersonate-service-account": _impersonate,
    "metadata server": _metadata,
}


@pytest.mark.parametrize("name", list(ACCESS))
def test_the_admin_api_gets_an_access_token_of_each_source(
    name: str, cloud_run: CloudRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    (isolated_env / "gcloud").mkdir(exist_ok=True)
    adc = isolated_env / "gcloud" / "application_default_credentials.json"
    args, principal = ACCESS[name](cloud_run, tmp_path, monkeypatch, adc)
    cloud_run.check.allowed_emails = frozenset({principal})
    if name == "ADC authorized_user":
        cloud_run.check.audience = USER_CLIENT_ID  # a gcloud user's token: aud is the OAuth client
    r = run("call", RUN, "SayHello", "-d", DATA, "--cacert", str(cloud_run.certs.ca), "--run-api", cloud_run.api.url, *args, "-o", "full")
    assert (r.code, r.stderr) == (0, ""), r
    assert r.json["messages"] == [HELLO]
    assert r.json["token"]["email"] == principal
    assert cloud_run.admin_requests() == [(GET, principal)]
    token = bearer(cloud_run.api.requests[0].headers["authorization"])
    assert token.startswith("ya29.") and cloud_run.issuer.access_tokens[token] == principal


def test_a_static_token_resolves_with_adc(cloud_run: CloudRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--token is an ID token: the Admin API is asked as ADC's identity."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(cloud_run.key))
    token = cloud_run.issuer.id_token(cloud_run.uri, email=KEY_SA)
    r = run("call", RUN, "SayHello", "-d", DATA, "--cacert", str(cloud_run.certs.ca), "--run-api", cloud_run.api.url, "--token", token)
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])
    assert cloud_run.admin_requests() == [(GET, KEY_SA)]
    assert cloud_run.recorder.headers_for("SayHello")[-1]["authorization"] == f"Bearer {token}"


# --- completion reads only the cache ------------------------------------------------------------


def _complete(words: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli"],
        env={**os.environ, "_CRGRPC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    return proc.stdout.split()


def test_completion_resolves_from_the_cache_only(cloud_run: CloudRun) -> None:
    words = f"crgrpc call {RUN} {' '.join(cloud_run.args())} SayHelloB"
    assert _complete(words) == []  # nothing cached: no Admin API request, no mint
    assert cloud_run.api.requests == [] and cloud_run.issuer.requests == []
    assert call(cloud_run, RUN).code == 0
    assert _complete(words) == ["SayHelloBidi"]
    assert cloud_run.api.count() == 1


def test_the_access_token_is_for_cloud_platform(cloud_run: CloudRun, tmp_path: Path) -> None:
    """The key's JWT-bearer grant asks for scope cloud-platform; impersonation asks
    generateAccessToken for it."""
    from google.auth import jwt as gjwt

    assert call(cloud_run, RUN).code == 0
    grants = [gjwt.decode(r.form["assertion"], verify=False) for r in cloud_run.issuer.requests if r.path == "/token"]
    assert [g.get("scope") for g in grants] == ["https://www.googleapis.com/auth/cloud-platform", None]
    assert grants[1]["target_audience"] == cloud_run.uri  # then the ID token for the call
    cloud_run.issuer.clear()
    cloud_run.check.allowed_emails = frozenset({TARGET_SA})
    r = run("call", f"run://{PROJECT}/{REGION}/echo", "SayHello", "--cacert", str(cloud_run.certs.ca), "--run-api", cloud_run.api.url,
            "--key-file", str(cloud_run.key), "--impersonate-service-account", TARGET_SA, "--iam-endpoint", cloud_run.issuer.url, "--include-email")
    assert (r.code, r.stderr) == (0, "")
    access = [r.json for r in cloud_run.issuer.requests if r.path.endswith(":generateAccessToken")]
    assert access == [{"delegates": None, "scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": "3600s"}]
