"""Interactive shells (bash, zsh, fish) under a pseudo-terminal, driven by pexpect.

A person's shell, not a script: the shell reads keys from a terminal, completes
on Tab with the scripts `crgrpc --install-completion` installed, and runs
crgrpc as a foreground job that Ctrl-C reaches through the terminal. Each Shell
has its own HOME (so its own rc files, crgrpc config and caches) and the
venv's bin first on PATH, so that `crgrpc` is the installed console script.

Every wait is on output the shell or crgrpc prints (a prompt, the completed
text, a marker), with a generous timeout: never on time alone.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PROMPT = "<sh>$ "
TIMEOUT = 20
# The start of a command's output: a new line, then maybe terminal modes the shell turns off
# before it runs a command (fish and zsh end bracketed paste: ESC [ ? 2004 l).
ESCAPES = r"\r\n(?:\x1b\[[0-9;?]*[A-Za-z])*"


def crgrpc_script() -> Path:
    script = BIN / "crgrpc"
    if not script.exists():
        pytest.skip("crgrpc is not installed as a console script in this environment")
    return script


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed (Debian package {shell!r}; .ci/run installs it)")
    return path


def shell_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a person's shell: own HOME, crgrpc on PATH, nothing leaves here."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("CRGRPC_", "BASH_FUNC_", "COMP_")) and k not in ("PROMPT_COMMAND", "ENV", "BASH_ENV")
    }
    env.update(
        HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        TERM="dumb",
        PS1=PROMPT,
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        CLOUDSDK_CONFIG=str(home / "gcloud"),
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
    )
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


class Shell:
    """One interactive shell on a pty of `columns` by `rows`."""

    def __init__(self, kind: str, home: Path, *, columns: int = 200, rows: int = 24, env: dict[str, str] | None = None) -> None:
        import pexpect

        self.kind = kind
        self._syncs = 0
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        exe = need(kind)
        self.env = env or shell_env(home)
        args = {
            "bash": ["--norc", "--noprofile", "-i"],
            "zsh": ["-f", "-i"],
            "fish": ["--no-config", "-i"],
        }[kind]
        # A shell that ends before its first prompt (seen once, on a machine under heavy
        # load) is started again: that is the pty's start, not what a test checks.
        for attempt in range(3):
            self.child = pexpect.spawn(
                exe, args, env=self.env, cwd=str(home), encoding="utf-8", codec_errors="replace",
                dimensions=(rows, columns), timeout=TIMEOUT,
            )
            try:
                if kind == "bash":
                    self.child.expect_exact(PROMPT)  # PS1 from the environment: bash is reading keys
                self.setup()
                return
            except pexpect.EOF:
                self.child.close(force=True)
                if attempt == 2:
                    raise

    def setup(self) -> None:
        """The same prompt in every shell, whatever its rc files set."""
        if self.kind in ("bash", "zsh"):
            self.child.sendline("PS1='<sh>$ '; echo SETUP-DONE")
        else:
            self.child.sendline("function fish_prompt; echo -n '<sh>$ '; end; echo SETUP-DONE")
        self.child.expect_exact("SETUP-DONE\r\n")
        self.child.expect_exact(PROMPT)

    def status_var(self) -> str:
        return "$status" if self.kind == "fish" else "$?"

    def run(self, command: str) -> tuple[str, int]:
        """Run a command line; (what it printed, its exit status as the shell reports it)."""
        self.child.send(f"{command}; echo RC:{self.status_var()}:END\r")
        self.child.expect(r"RC:(\d+):END\r\n")
        output, rc = self.child.before, int(self.child.match.group(1))
        self.child.expect_exact(PROMPT)
        return output, rc

    def install_completion(self) -> None:
        """What the README says to do: crgrpc --install-completion, then a new shell."""
        out, rc = self.run("crgrpc --install-completion")
        assert rc == 0, out
        assert "completion installed in" in out, out
        if self.kind == "bash":  # reads the ~/.bashrc just written
            self.child.send("exec bash --noprofile --rcfile ~/.bashrc -i\r")
        else:  # reads the ~/.zshrc, or finds ~/.config/fish/completions/crgrpc.fish
            self.child.send(f"exec {self.kind} -i\r")
        self.setup()

    def line_after(self, typed: str) -> str:
        """The command line as it stands after the keys `typed` (a marker echo runs it)."""
        self.child.send("\x01echo LINE: \r")  # Ctrl-A, then run `echo LINE: <the line>`
        self.child.expect(ESCAPES + r"LINE: ([^\r\n]*)\r\n")
        line = self.child.match.group(1)
        self.child.expect_exact(PROMPT)
        return str(line)

    def complete(self, typed: str, inserted: str) -> str:
        """Type `typed`, press Tab, wait for the shell to insert `inserted`; the full line."""
        assert inserted not in typed, "choose a completion the typed text does not contain"
        self.child.send(typed + "\t")
        self.child.expect_exact(inserted)
        return self.line_after(typed)

    def listing(self, typed: str) -> list[str]:
        """bash: type `typed` and press Tab until bash lists the candidates (a first Tab may
        insert their common prefix, and rings; the next one lists); the candidates."""
        assert self.kind == "bash"
        self.child.send(typed)
        for _ in range(3):
            self.child.send("\t")
            if self.child.expect_exact(["\r\n" + PROMPT, "\x07"]) == 0:
                break  # the prompt redrawn under the list
        else:
            raise AssertionError("bash listed nothing")
        shown = self.child.before
        self.drop_line()
        return sorted(shown.split("\r\n", 1)[1].split())

    def drop_line(self) -> None:
        """Ctrl-U drops what is typed; then wait for a marker command's output and its prompt
        (a dumb terminal redraws the prompt on Ctrl-U: a prompt alone proves nothing)."""
        self._syncs += 1
        self.child.send(f"\x15echo SYNC:{self._syncs}\r")
        self.child.expect(ESCAPES + f"SYNC:{self._syncs}\r\n")
        self.child.expect_exact(PROMPT)

    def close(self) -> None:
        self.child.close(force=True)
