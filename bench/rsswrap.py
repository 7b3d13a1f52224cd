"""Run a command and write its own peak RSS (KiB) to a file.

Linux carries a process's peak RSS across fork and exec, so a child forked
straight from the (large) benchmark process reports the benchmark's RSS as
its own floor. This small launcher forks the command from a ~10 MiB
process instead: what it reports is the command's own peak.

    python -S bench/rsswrap.py OUT_FILE CMD [ARG...]
"""

import os
import sys


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
