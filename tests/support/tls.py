"""Certificates made at test time (the demo's own certificate maker)."""

from cloudrun_grpc_cli.demo.certs import CertFiles, make_certs

__all__ = ["CertFiles", "make_certs"]
