"""Certificates made at run time with `cryptography`: a CA, server leaves, self-signed.

Used by `crgrpc demo` (its TLS Echo server) and by the tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    ca: Path  # the certificate to trust (the CA, or the cert itself when self-signed)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def make_certs(
    directory: Path,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    *,
    self_signed: bool = False,
    expired: bool = False,
    prefix: str = "server",
) -> CertFiles:
    """A server certificate for `names`, signed by a fresh CA (or self-signed)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    if expired:
        not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    else:
        not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=2)
    leaf_key = _key()
    if self_signed:
        issuer_key, issuer_name = leaf_key, _name(names[0])
    else:
        ca_key = _key()
        ca_name = _name("crgrpc test CA")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        issuer_key, issuer_name = ca_key, ca_name
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(list(names)), critical=False)
    )
    if self_signed:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    leaf = builder.sign(issuer_key, hashes.SHA256())
    cert_path = directory / f"{prefix}.crt"
    key_path = directory / f"{prefix}.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(leaf_key))
    if self_signed:
        return CertFiles(cert_path, key_path, cert_path)
    ca_path = directory / f"{prefix}-ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return CertFiles(cert_path, key_path, ca_path)
