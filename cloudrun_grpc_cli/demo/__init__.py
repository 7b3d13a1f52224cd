"""The bundled Echo service, its generated code, and the stand-ins `crgrpc demo` runs.

The Echo server and its token check (`serve`, `demo`), TLS certificates and a
local token issuer for a service-account key (`demo`). Nothing here is needed
to make calls, and nothing here imports the CLI: the walkthrough itself is
cli/demo_cmd.py.
"""
