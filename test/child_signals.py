"""For tests that stop a child process with SIGINT, as Ctrl-C stops a command run in a terminal.

A test run started in the background (`nohup make test &`, `cmd &` in a script without job control) has
SIGINT ignored, every child inherits that, and a Python child then never gets KeyboardInterrupt: the test
would measure its harness, not the command. `preexec_fn=foreground_sigint` gives the child SIGINT's default
disposition, as a foreground command has.
"""

from __future__ import annotations

import signal


def foreground_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
