"""The load generator behind `crgrpc bench` (imported by module, so that
importing `spec` alone, as the option table does, loads no grpc).

`spec` (what is asked and how it is shared among workers), `worker` (one
asyncio loop on grpc.aio channels: open- or closed-loop lanes, latencies in
an HDR histogram), `tokens` (the metadata each request carries, its token
refreshed in the background), `runner` (the coordinator: workers in a thread
or in processes, progress, the merge), `report` (the merged figures, the
-o json document, the --max-error-rate gate), `histogram` (hdrhistogram).
"""
