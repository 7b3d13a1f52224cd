"""Texts several auth messages share: one home each."""

from __future__ import annotations

GCLOUD_LOGIN = "`gcloud auth application-default login`"
CREDENTIALS_HINT = (
    f"pass --key-file, --impersonate-service-account or --token, or run {GCLOUD_LOGIN}"
)
