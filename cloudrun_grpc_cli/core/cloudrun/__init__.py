"""Cloud Run services through the Cloud Run Admin API v2: `run://` targets and doctor's facts.

Modules: `location` (project and region: the target, --project/--region,
gcloud's settings), `api` (services.get and getIamPolicy over HTTP, with an
OAuth access token of the call's own credentials), `model` (the Service
resource, only the fields crgrpc reads), `cache` (the 5-minute resolution
cache), `resolve` (run:// → the service's URL and audience), `runapp` (a
deterministic run.app URL → its service), `errors` (the failures, which
core.hints explains). Importing this package loads neither requests nor
google.auth: a resolution answered from the cache needs neither.
"""

from __future__ import annotations

DEFAULT_RUN_API = "https://run.googleapis.com"
