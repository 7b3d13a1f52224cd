"""`crgrpc doctor` (issue 13): each check in each of its results, the exit code of the first
failure, one JSON object per check in a pipe and a table on a terminal.

End to end through the TLS Echo service with its token check (tests/support/runapi.py):
Cloud Run's front end is the token check (the service's uri as audience, only the
invoker's email allowed), the Admin API v2 stand-in describes the service.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_reflection.v1alpha import reflection, reflection_pb2

from cloudrun_grpc_cli.demo import echo_pb2_grpc
from cloudrun_grpc_cli.demo.echo import EchoServicer
from cloudrun_grpc_cli.demo.runapi import service_json
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from tests.support.cli import run
from tests.support.issuer import KEY_SA, USER_CLIENT_ID, USER_EMAIL, Issuer, issuer_fixture  # noqa: F401
from tests.support.runapi import (  # noqa: F401
    NUMBER,
    PROJECT,
    REGION,
    RUN,
    CloudRun,
    cloud_run_fixture,
    run_certs_fixture,
)
from tests.support.servers import echo_server, unix_echo_server
from tests.support.tls import CertFiles, make_certs

NAME = f"projects/{PROJECT}/locations/{REGION}/services/echo"
TRIED = "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server"
WHERE = f"--region {REGION} --project {PROJECT}"
ADMIN_HINT = (
    "the Admin API checks need a run:// target (run://[[PROJECT/]REGION/]SERVICE) "
    "or a https://SERVICE-PROJECTNUMBER.REGION.run.app URL"
)
NOT_CLOUD_RUN = (
    "not a Cloud Run target the Admin API can name (neither run:// nor a run.app URL with its "
    "project number and region)"
)
ADMIN = ("service", "token", "ingress", "invoker", "iap", "http2", "timeout")
ORDER = ["credentials", *ADMIN, "connect", "reflection", "health"]
CREDENTIALS_HINT = (
    "pass --key-file, --impersonate-service-account or --token, or run "
    "`gcloud auth application-default login`"
)


def line(check: str, result: str, detail: str, hint: str = "") -> dict[str, str]:
    return {"check": check, "result": result, "detail": detail, "hint": hint}


def doctor(*argv: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Exit code, the JSON line of each check by name (in order, exactly once), stderr."""
    r = run("doctor", *argv)
    rows = r.lines
    assert [row["check"] for row in rows] == ORDER, r
    assert all(set(row) == {"check", "result", "detail", "hint"} for row in rows)
    return r.code, {row["check"]: row for row in rows}, r.stderr


def connect_detail(host: str, port: int, ca: CertFiles, name: str = "localhost") -> str:
    addresses = sorted({str(i[4][0]) for i in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    until = cert.not_valid_after_utc.strftime("%Y-%m-%d")
    dns = f"DNS {host} → {', '.join(addresses[:3])}, " if addresses != [host] else ""
    return f"{host}:{port}: {dns}TCP, TLSv1.3, certificate valid for {name} until {until}, ALPN h2"


def healthy(cr: CloudRun) -> dict[str, dict[str, str]]:
    return {
        "credentials": line("credentials", "ok", f"service-account key {cr.key}: {KEY_SA}"),
        "service": line("service", "ok", f"{NAME}: revision echo-00001-abc is ready; {cr.uri}"),
        "token": line("token", "ok", f"aud {cr.uri} is the service's URL"),
        "ingress": line("ingress", "ok", "INGRESS_TRAFFIC_ALL: reachable from the internet"),
        "invoker": line("invoker", "ok", f"serviceAccount:{KEY_SA} has roles/run.invoker"),
        "iap": line("iap", "ok", "IAP is not enabled on the service"),
        "http2": line("http2", "ok", "end-to-end HTTP/2: the container port is named h2c"),
        "timeout": line("timeout", "ok", "the revision's request timeout is 300 s"),
        "connect": line("connect", "ok", connect_detail("localhost", cr.port, cr.certs)),
        "reflection": line("reflection", "ok", "v1alpha: 2 services (echo.EchoServer)"),
        "health": line("health", "skip", "the server does not list grpc.health.v1.Health"),
    }


# --- end to end ------------------------------------------------------------------------------


def test_a_healthy_service_exits_0(cloud_run: CloudRun) -> None:
    code, rows, err = doctor(RUN, *cloud_run.args())
    assert (code, err) == (0, "")
    assert rows == healthy(cloud_run)
    # doctor asks the Admin API fresh, and the call after it resolves from the cache it wrote
    assert cloud_run.api.count() == 2  # services.get and getIamPolicy
    r = run("call", RUN, "SayHello", *cloud_run.args())
    assert r.code == 0
    assert cloud_run.api.count() == 2


def test_without_the_invoker_binding_exits_71(cloud_run: CloudRun) -> None:
    cloud_run.policy()  # no member has roles/run.invoker
    cloud_run.check.allowed_emails = frozenset({"someone-else@example.com"})
    code, rows, err = doctor(RUN, *cloud_run.args())
    hint = (
        f"gcloud run services add-iam-policy-binding echo {WHERE} "
        f"--member=serviceAccount:{KEY_SA} --role=roles/run.invoker"
    )
    detail = (
        f"serviceAccount:{KEY_SA} has no roles/run.invoker binding on the service "
        "(roles granted on the project are not visible here)"
    )
    assert code == 71
    assert rows["invoker"] == line("invoker", "fail", detail, hint)
    # reflection meets the same refusal the call would
    assert rows["reflection"]["result"] == "fail"
    assert rows["reflection"]["detail"] == f"PERMISSION_DENIED: reflection: {KEY_SA} may not call this service"
    assert err == f"error: doctor: the invoker check failed (and 1 more): {detail}\nhint: {hint}\n"
    call = run("call", RUN, "SayHello", *cloud_run.args())
    assert call.code == 71  # what doctor said the real call meets


def test_a_token_the_service_refuses_exits_80(cloud_run: CloudRun) -> None:
    code, rows, err = doctor(RUN, *cloud_run.args(), "--audience", "https://wrong.example")
    hint = (
        f"pass --audience {cloud_run.uri}, or make the service accept https://wrong.example: "
        f"gcloud run services update echo {WHERE} --add-custom-audiences https://wrong.example"
    )
    assert code == 80
    assert rows["token"] == line(
        "token", "fail",
        f"aud https://wrong.example is not one the service accepts: {cloud_run.uri}", hint,
    )
    assert err.splitlines()[0].startswith("error: doctor: the token check failed")
    assert run("call", RUN, "SayHello", *cloud_run.args(), "--audience", "https://wrong.example").code == 80


def test_no_credentials_exits_3(cloud_run: CloudRun) -> None:
    code, rows, _ = doctor(RUN, *cloud_run.args(key=False))
    assert code == 3
    assert rows["credentials"] == line(
        "credentials", "fail", f"none: no Google credentials found (tried: {TRIED})", CREDENTIALS_HINT
    )
    for name in ADMIN:
        assert rows[name] == line(name, "skip", "the Admin API needs credentials (see credentials)")
    assert rows["connect"] == line("connect", "skip", "no address to dial (see service)")
    assert rows["reflection"] == line("reflection", "skip", "no connection (see connect)")
    assert rows["health"] == line("health", "skip", "no connection (see connect)")
    assert cloud_run.api.requests == []


def test_a_service_not_found_exits_4(cloud_run: CloudRun) -> None:
    code, rows, _ = doctor(f"run://{PROJECT}/{REGION}/nope", *cloud_run.args())
    assert code == 4
    assert rows["credentials"]["result"] == "ok"
    assert rows["service"] == line(
        "service", "fail",
        f"the Cloud Run service nope (project {PROJECT}, region {REGION}) does not exist (HTTP 404: "
        f"Resource 'nope' of kind 'SERVICE' in region '{REGION}' in project '{PROJECT}' does not exist.)",
        f"list the services: gcloud run services list {WHERE}",
    )
    for name in ADMIN[1:]:
        assert rows[name] == line(name, "skip", "the service could not be read (see service)")
    assert rows["connect"]["result"] == "skip"


def test_a_connection_that_fails_exits_4(cloud_run: CloudRun) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cloud_run.api.services[cloud_run.name]["uri"] = f"https://localhost:{port}"
    cloud_run.api.services[cloud_run.name]["urls"] = [f"https://localhost:{port}"]
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 4
    connect = rows["connect"]
    assert connect["result"] == "fail"
    assert connect["detail"].startswith(f"TCP: cannot connect to localhost:{port}: ")
    assert connect["hint"] == "is the server running and listening on that port?"
    assert rows["reflection"] == line("reflection", "skip", "no connection (see connect)")


# --- credentials -----------------------------------------------------------------------------


def test_credentials_warn_for_a_server_that_is_not_cloud_run() -> None:
    with echo_server() as srv:
        code, rows, err = doctor(srv.address, "--plaintext")
    assert (code, err) == (0, "")
    assert rows["credentials"] == line(
        "credentials", "warn",
        f"none: no Google credentials found (tried: {TRIED}); calls go out without a token",
        CREDENTIALS_HINT,
    )
    for name in ADMIN:
        assert rows[name] == line(name, "skip", NOT_CLOUD_RUN, ADMIN_HINT)
    assert rows["connect"] == line("connect", "ok", f"{srv.address}: TCP; plaintext (h2c: no TLS, no ALPN)")
    assert rows["reflection"] == line("reflection", "ok", "v1alpha: 2 services (echo.EchoServer)")


def test_credentials_fail_when_minting_fails(cloud_run: CloudRun, tmp_path: Path) -> None:
    bad = cloud_run.issuer.write_service_account_key(tmp_path / "bad.json", "ghost@test-project.iam.gserviceaccount.com")
    cloud_run.issuer.service_accounts.clear()  # the issuer no longer knows any key
    code, rows, _ = doctor(RUN, "--key-file", str(bad), "--cacert", str(cloud_run.certs.ca), "--run-api", cloud_run.api.url)
    assert code == 3
    cred = rows["credentials"]
    assert cred["result"] == "fail"
    assert cred["detail"].startswith(f"--key-file {bad}: could not mint an access token: invalid_grant: Invalid JWT Signature.")


# --- service ---------------------------------------------------------------------------------


def test_service_not_ready_fails(cloud_run: CloudRun) -> None:
    cloud_run.service(ready=False)
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 78
    assert rows["service"] == line(
        "service", "fail",
        f"{NAME}: the latest revision echo-00002-def is not ready: Revision 'x' is not ready and "
        "cannot serve traffic. The user-provided container failed to start.",
        f"see the revision's logs: gcloud run revisions describe echo-00002-def {WHERE}",
    )


def test_service_unreadable_fails_for_run_targets(cloud_run: CloudRun) -> None:
    cloud_run.api.viewers = set()
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 3
    assert rows["service"]["result"] == "fail"
    assert rows["service"]["detail"].startswith(f"{KEY_SA} may not read the Cloud Run service echo")
    assert rows["service"]["hint"].startswith("reading the service needs roles/run.viewer (run.services.get)")


RUN_APP_HOST = f"echo-{NUMBER}.{REGION}.run.app"


@pytest.fixture(scope="module")
def run_app_certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("runapp-tls"), names=("localhost", RUN_APP_HOST))


@contextmanager
def run_app_server(cr: CloudRun, certs: CertFiles) -> Iterator[int]:
    """The service also answers for its deterministic run.app URL (a certificate for it)."""
    check = TokenCheck(f"https://{RUN_APP_HOST}", certs=cr.issuer.certs_url, allowed_emails=(KEY_SA,))
    with echo_server(tls=certs, interceptors=(check,)) as srv:
        cr.service(urls=[f"https://{RUN_APP_HOST}"])
        yield srv.port


def test_a_run_app_url_is_resolved_to_its_service(cloud_run: CloudRun, run_app_certs: CertFiles) -> None:
    with run_app_server(cloud_run, run_app_certs) as port:
        code, rows, err = doctor(
            f"localhost:{port}", "--authority", RUN_APP_HOST, "--key-file", str(cloud_run.key),
            "--cacert", str(run_app_certs.ca), "--run-api", cloud_run.api.url,
        )
    assert (code, err) == (0, "")
    assert cloud_run.admin_requests()[0] == (f"/v2/projects/{NUMBER}/locations/{REGION}/services/echo", KEY_SA)
    assert rows["service"] == line("service", "ok", f"{NAME}: revision echo-00001-abc is ready; {cloud_run.uri}")
    assert rows["token"] == line("token", "ok", f"aud https://{RUN_APP_HOST} is one of the service's URLs")
    assert rows["connect"] == line("connect", "ok", connect_detail("localhost", port, run_app_certs, RUN_APP_HOST))


def test_an_unreadable_run_app_service_is_skipped(cloud_run: CloudRun, run_app_certs: CertFiles) -> None:
    cloud_run.api.viewers = set()
    with run_app_server(cloud_run, run_app_certs) as port:
        code, rows, _ = doctor(
            f"localhost:{port}", "--authority", RUN_APP_HOST, "--key-file", str(cloud_run.key),
            "--cacert", str(run_app_certs.ca), "--run-api", cloud_run.api.url,
        )
    assert code == 0  # the call by URL needs no Admin API
    assert rows["service"]["result"] == "skip"
    assert rows["service"]["detail"].startswith(f"cannot read the service: {KEY_SA} may not read")
    assert rows["service"]["hint"] == "reading the service needs roles/run.viewer on it or its project"
    for name in ADMIN[1:]:
        assert rows[name] == line(name, "skip", "the service could not be read (see service)")
    assert rows["reflection"]["result"] == "ok"


# --- token -----------------------------------------------------------------------------------


def test_token_ok_for_a_custom_audience(cloud_run: CloudRun) -> None:
    cloud_run.service(custom_audiences=["https://echo.example.com"])
    cloud_run.check.audience = "https://echo.example.com"
    code, rows, _ = doctor(RUN, *cloud_run.args(), "--audience", "https://echo.example.com")
    assert code == 0
    assert rows["token"] == line("token", "ok", "aud https://echo.example.com is one of the service's custom audiences")


def test_token_ok_for_a_gcloud_user(cloud_run: CloudRun, isolated_env: Path) -> None:
    (isolated_env / "gcloud").mkdir(exist_ok=True)
    cloud_run.issuer.write_authorized_user(isolated_env / "gcloud" / "application_default_credentials.json")
    cloud_run.check.audience = USER_CLIENT_ID
    cloud_run.check.allowed_emails = frozenset({USER_EMAIL})
    cloud_run.policy(f"user:{USER_EMAIL}")
    code, rows, _ = doctor(RUN, "--cacert", str(cloud_run.certs.ca), "--run-api", cloud_run.api.url, "--auth")
    assert code == 0, rows
    assert rows["credentials"]["detail"].endswith(f": {USER_EMAIL}")
    assert rows["token"] == line(
        "token", "ok",
        f"a gcloud user's token: aud {USER_CLIENT_ID} is the OAuth client, which Cloud Run accepts for users",
    )
    assert rows["invoker"] == line("invoker", "ok", f"user:{USER_EMAIL} has roles/run.invoker")


def test_token_warns_when_none_is_sent(cloud_run: CloudRun) -> None:
    code, rows, _ = doctor(RUN, *cloud_run.args(), "--no-auth")
    assert rows["credentials"] == line(
        "credentials", "ok", f"service-account key {cloud_run.key}: {KEY_SA} (--no-auth: no token is sent)"
    )
    assert rows["token"] == line(
        "token", "warn", "no token is sent (--no-auth): Cloud Run refuses the call (401)",
        "send a token: drop --no-auth (or -H), or give a credentials source",
    )
    assert rows["reflection"]["result"] == "fail"
    assert code == 80  # reflection without a token is refused, as the call would be


def test_token_ok_without_a_token_when_iam_is_off(cloud_run: CloudRun) -> None:
    cloud_run.service(invoker_iam_disabled=True)
    _, rows, _ = doctor(RUN, *cloud_run.args(), "--no-auth")
    assert rows["token"] == line("token", "ok", "no token is sent (--no-auth); the service checks none")
    assert rows["invoker"] == line("invoker", "ok", "invokerIamDisabled: the service takes calls without an IAM check")


IAP_HINT = (
    "pass --audience IAP_CLIENT_ID.apps.googleusercontent.com (the IAP OAuth client), and "
    "--auth-header proxy-authorization to keep authorization for the app"
)


def test_iap_warns_and_the_token_is_not_failed(cloud_run: CloudRun) -> None:
    client = "1234-iap.apps.googleusercontent.com"
    cloud_run.service(iap_enabled=True)
    cloud_run.check.audience = client
    cloud_run.check.headers = ("proxy-authorization",)  # IAP reads it
    code, rows, _ = doctor(RUN, *cloud_run.args(), "--audience", client, "--auth-header", "proxy-authorization")
    assert code == 0, rows
    assert rows["iap"] == line(
        "iap", "warn",
        "IAP is enabled: the token's audience must be the IAP OAuth client ID, not the service's URL",
        IAP_HINT,
    )
    assert rows["token"] == line(
        "token", "warn",
        f"aud {client} is not one Cloud Run accepts by itself; with IAP it must be the IAP OAuth client ID",
        IAP_HINT,
    )


# --- ingress, invoker, http2, timeout --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("INGRESS_TRAFFIC_INTERNAL_ONLY", "internal only: reachable from VPC networks of the project (and Shared VPC), other Cloud Run services and functions through the VPC, not from the internet"),
        ("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "internal and Cloud Load Balancing: reachable from VPC networks and through an Application Load Balancer, not at its run.app URL from the internet"),
    ],
)
def test_internal_ingress_warns(cloud_run: CloudRun, kind: str, where: str) -> None:
    cloud_run.service(ingress=kind)
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 0
    assert rows["ingress"] == line(
        "ingress", "warn", f"{kind}: {where}",
        f"call from where it is reachable, or: gcloud run services update echo {WHERE} --ingress all",
    )


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_invoker_ok_for_everyone(cloud_run: CloudRun, member: str) -> None:
    cloud_run.policy(member)
    _, rows, _ = doctor(RUN, *cloud_run.args())
    assert rows["invoker"] == line("invoker", "ok", f"{member} has roles/run.invoker: the service is public")


def test_invoker_warns_for_groups_and_domains(cloud_run: CloudRun) -> None:
    cloud_run.policy("group:team@example.com", "domain:example.com")
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 0
    assert rows["invoker"] == line(
        "invoker", "warn",
        f"roles/run.invoker is bound only to domain:example.com, group:team@example.com: whether "
        f"{KEY_SA} is a member cannot be checked from here",
        f"make sure {KEY_SA} is in one of them",
    )


def test_invoker_warns_for_a_conditional_binding(cloud_run: CloudRun) -> None:
    cloud_run.api.policies[cloud_run.name] = {
        "version": 3,
        "bindings": [{
            "role": "roles/run.invoker", "members": [f"serviceAccount:{KEY_SA}"],
            "condition": {"title": "office hours", "expression": "request.time.getHours() < 18"},
        }],
    }
    _, rows, _ = doctor(RUN, *cloud_run.args())
    assert rows["invoker"] == line(
        "invoker", "warn",
        f"serviceAccount:{KEY_SA} has roles/run.invoker only under 'office hours', which cannot be checked from here",
    )


def test_invoker_skips_an_unreadable_policy(cloud_run: CloudRun) -> None:
    cloud_run.api.policy_readers = set()
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 0
    assert rows["invoker"] == line(
        "invoker", "skip",
        f"cannot read the IAM policy: {KEY_SA} may not read the IAM policy of the Cloud Run service "
        f"echo (project {PROJECT}, region {REGION}) (HTTP 403: Permission 'run.services.getIamPolicy' "
        f"denied on resource '{NAME}' (or resource may not exist).)",
        "reading the policy needs run.services.getIamPolicy (roles/run.viewer)",
    )
    assert "/v2/" + NAME + ":getIamPolicy" in [r.path for r in cloud_run.api.requests]
    assert cloud_run.api.requests[-1].query == {"options.requestedPolicyVersion": "3"}


def test_http2_warns_without_h2c(cloud_run: CloudRun) -> None:
    cloud_run.service(h2c=False)
    code, rows, _ = doctor(RUN, *cloud_run.args())
    assert code == 0
    assert rows["http2"] == line(
        "http2", "warn",
        "the container port is http1, not h2c: Cloud Run speaks HTTP/1.1 to the container, so client "
        "and bidi streaming and reflection fail (deadlines); unary calls work",
        f"gcloud run services update echo {WHERE} --use-http2",
    )


def test_timeout_warns_when_the_deadline_is_longer(cloud_run: CloudRun) -> None:
    code, rows, _ = doctor(RUN, *cloud_run.args(), "--timeout", "600")
    assert code == 0
    assert rows["timeout"] == line(
        "timeout", "warn",
        "--timeout 600 s exceeds it: the revision's request timeout is 300 s, so Cloud Run ends longer calls first",
        f"lower --timeout, or raise the service's: gcloud run services update echo {WHERE} --timeout 600",
    )


def test_timeout_ok_and_the_default(cloud_run: CloudRun) -> None:
    cloud_run.service(timeout=None)
    _, rows, _ = doctor(RUN, *cloud_run.args(), "--timeout", "30")
    assert rows["timeout"] == line(
        "timeout", "ok", "the revision's request timeout is 300 s (the default); --timeout 30 s is within it"
    )


# --- connect ---------------------------------------------------------------------------------


def test_connect_fails_for_a_certificate_of_another_ca(cloud_run: CloudRun, tmp_path: Path) -> None:
    other = make_certs(tmp_path / "other")
    code, rows, _ = doctor(RUN, "--key-file", str(cloud_run.key), "--cacert", str(other.ca), "--run-api", cloud_run.api.url)
    assert code == 4
    c = rows["connect"]
    assert c["result"] == "fail"
    assert c["detail"].startswith(f"localhost:{cloud_run.port}: DNS localhost → ")
    assert "TCP; TLS: the certificate is not valid for localhost: " in c["detail"]
    assert c["hint"] == "for a private CA pass --cacert FILE; for a self-signed server --insecure"


def test_connect_warns_with_insecure(cloud_run: CloudRun) -> None:
    code, rows, _ = doctor(RUN, "--key-file", str(cloud_run.key), "--insecure", "--run-api", cloud_run.api.url)
    assert code == 0
    assert rows["connect"]["result"] == "warn"
    assert rows["connect"]["detail"].endswith("TCP, TLSv1.3, certificate not verified (--insecure), ALPN h2")
    assert rows["connect"]["hint"] == "drop --insecure and pass --cacert FILE to verify the server"


# --- reflection and health ---------------------------------------------------------------------


def test_reflection_none_warns() -> None:
    with echo_server(reflection=False) as srv:
        code, rows, _ = doctor(srv.address, "--plaintext")
    assert code == 0
    assert rows["reflection"] == line(
        "reflection", "warn", "none: the server answers neither v1 nor v1alpha",
        "give the schema with --protoset FILE (or --proto FILE)",
    )
    assert rows["health"] == line("health", "skip", "/grpc.health.v1.Health/Check is not served")


HEALTH = "grpc.health.v1.Health"
ECHO = "echo.EchoServer"


@contextmanager
def health_server(status: int, *, refuse: tuple[grpc.StatusCode, str] | None = None) -> Iterator[str]:
    """Echo, reflection v1 listing the health service, and Health/Check answering status
    (or failing with refuse's code and message)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    echo_pb2_grpc.add_EchoServerServicer_to_server(EchoServicer(), server)
    answer = bytes([0x08, status]) if status else b""

    def behave(request: bytes, context: grpc.ServicerContext) -> bytes:
        if refuse is not None:
            context.abort(*refuse)
        return answer

    check = grpc.unary_unary_rpc_method_handler(behave)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(HEALTH, {"Check": check}),))
    servicer = reflection.ReflectionServicer([ECHO, HEALTH, "grpc.reflection.v1.ServerReflection"])
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": info}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


def test_reflection_v1_and_health_serving() -> None:
    with health_server(1) as address:
        code, rows, _ = doctor(address, "--plaintext")
    assert code == 0
    assert rows["reflection"] == line("reflection", "ok", f"v1: 3 services ({ECHO}, {HEALTH})")
    assert rows["health"] == line("health", "ok", "/grpc.health.v1.Health/Check: SERVING")


def test_health_not_serving_warns() -> None:
    with health_server(2) as address:
        code, rows, _ = doctor(address, "--plaintext")
    assert code == 0
    assert rows["health"] == line(
        "health", "warn", "/grpc.health.v1.Health/Check: NOT_SERVING",
        "the server's health check says it is not serving: see its logs",
    )


@pytest.mark.parametrize(
    ("code", "message", "shown"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, "health is for operators", "Check answered PERMISSION_DENIED: health is for operators"),
        (grpc.StatusCode.UNAVAILABLE, "", "Check answered UNAVAILABLE"),
    ],
)
def test_health_check_failing_warns_with_its_status(code: grpc.StatusCode, message: str, shown: str) -> None:
    """A Check that fails (not UNIMPLEMENTED: that is a skip) is a warn naming the status;
    the run still exits 0, since calls may work."""
    with health_server(1, refuse=(code, message)) as address:
        exit_code, rows, _ = doctor(address, "--plaintext")
    assert exit_code == 0
    assert rows["health"] == line(
        "health", "warn", shown,
        "the health check itself failed (calls may still work): "
        "crgrpc call TARGET grpc.health.v1.Health/Check -d '{}' shows the whole error",
    )


def test_doctor_on_a_unix_socket(tmp_path: Path) -> None:
    """unix:// targets: connect and reflection are checked; the Cloud Run checks are skipped."""
    sock = tmp_path / "echo.sock"
    with unix_echo_server(sock) as target:
        exit_code, rows, _ = doctor(target)
    assert exit_code == 0
    assert rows["connect"] == line("connect", "ok", f"unix://{sock}: the socket accepts connections (plaintext)")
    assert rows["reflection"] == line("reflection", "ok", "v1alpha: 2 services (echo.EchoServer)")
    assert rows["health"] == line("health", "skip", "the server does not list grpc.health.v1.Health")
    not_named = line(
        "service", "skip",
        "not a Cloud Run target the Admin API can name (neither run:// nor a run.app URL with its "
        "project number and region)",
        "the Admin API checks need a run:// target (run://[[PROJECT/]REGION/]SERVICE) or a "
        "https://SERVICE-PROJECTNUMBER.REGION.run.app URL",
    )
    for check in ("service", "token", "ingress", "invoker", "iap", "http2", "timeout"):
        assert rows[check] == {**not_named, "check": check}


def test_reflection_refused_fails_with_the_calls_code(issuer: Issuer, run_certs: CertFiles) -> None:
    check = TokenCheck("https://localhost", certs=issuer.certs_url)
    with echo_server(tls=run_certs, interceptors=(check,)) as srv:
        code, rows, err = doctor(f"localhost:{srv.port}", "--cacert", str(run_certs.ca))
    assert code == 80
    assert rows["credentials"]["result"] == "warn"
    assert rows["reflection"] == line(
        "reflection", "fail", "UNAUTHENTICATED: reflection: missing bearer token",
        f"no token was sent (no Google credentials found (tried: {TRIED}))",
    )
    assert err.startswith("error: doctor: the reflection check failed: UNAUTHENTICATED")


# --- output ----------------------------------------------------------------------------------


def test_a_terminal_gets_a_table(cloud_run: CloudRun) -> None:
    cloud_run.service(h2c=False)
    r = run("doctor", RUN, *cloud_run.args(), tty=True)
    assert (r.code, r.stderr) == (0, "")
    lines = r.stdout.splitlines()
    assert lines[0] == f"doctor {RUN}"
    assert lines[1].split() == ["check", "result", "detail"]
    starts = [ln.split()[:3] for ln in lines[2:] if ln.split() and ln.split()[0] in ORDER]
    assert [s[0] for s in starts] == ORDER
    marks = {s[0]: " ".join(s[1:3]) for s in starts}
    assert marks["http2"] == "! warn" and marks["health"] == "- skip" and marks["token"] == "✓ ok"
    http2 = next(i for i, ln in enumerate(lines) if ln.startswith("http2 "))
    assert lines[http2].startswith("http2        ! warn  the container port is http1, not h2c")
    # the hint on its own line, under the detail column (no folding, no trailing spaces)
    assert lines[http2 + 1] == " " * 21 + f"hint: gcloud run services update echo {WHERE} --use-http2"
    assert all(ln == ln.rstrip() for ln in lines)
    assert lines[-1] == "1 warning, 9 ok, 1 skipped"


def test_failures_in_a_table_and_the_error_line(cloud_run: CloudRun) -> None:
    r = run("doctor", f"run://{PROJECT}/{REGION}/nope", *cloud_run.args(), tty=True)
    assert r.code == 4
    assert "✗ fail" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 failed, 1 ok, 9 skipped"
    assert r.stderr.startswith("error: doctor: the service check failed: the Cloud Run service nope")


def test_doctor_takes_pretty_and_json_only() -> None:
    r = run("doctor", "localhost:1", "-o", "full")
    assert (r.code, r.stderr) == (2, "error: -o full is not available for this command\nhint: use one of: pretty, json\n")


def test_service_json_fixture_is_what_doctor_reads() -> None:
    """The stand-in's fixture parses into exactly what the checks use."""
    from cloudrun_grpc_cli.core.cloudrun.model import RunService

    svc = RunService.from_json(service_json("p-123456", "us-central1", "s", "https://s-x.a.run.app", h2c=False, timeout="15s"))
    assert (svc.ready, svc.http2, svc.request_timeout, svc.latest_revision) == (True, False, 15.0, "s-00001-abc")
    assert svc.accepted_audiences == ("https://s-x.a.run.app",)


@contextmanager
def http1_tls_server(certs: CertFiles) -> Iterator[int]:
    """A TLS server that agrees only to ALPN http/1.1 (not gRPC)."""
    import ssl
    import threading

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs.cert), str(certs.key))
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_connect_fails_without_alpn_h2(run_certs: CertFiles) -> None:
    with http1_tls_server(run_certs) as port:
        code, rows, _ = doctor(f"localhost:{port}", "--cacert", str(run_certs.ca), "--no-auth")
    assert code == 4
    c = rows["connect"]
    assert c["result"] == "fail"
    assert c["detail"].endswith(
        "ALPN: the server did not agree to h2 (no ALPN), so gRPC cannot speak to it"
    )
    assert "certificate valid for localhost" in c["detail"]
    assert rows["reflection"] == line("reflection", "skip", "no connection (see connect)")
