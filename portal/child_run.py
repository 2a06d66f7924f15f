"""Running the audit's pytest process so that SIGTERM and SIGINT reach it and it can finish.

The runner's own default reactions would lose the run: SIGINT raises KeyboardInterrupt in the
runner, and ``subprocess.call`` then kills the child before it has written its reports; SIGTERM
would end the runner without rendering the report or keeping the status. Instead the runner
passes each signal on to the audit process (which writes its summary, see portal.run_stop) and
keeps waiting for it, so the usual ending (exit status, HTML report) follows.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT)


def run_forwarding_signals(command: Sequence[str], cwd: Path) -> int:
    """Run ``command`` to its end, forwarding SIGTERM and SIGINT to it; its exit status."""
    child = subprocess.Popen(list(command), cwd=cwd)

    def forward(number: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            # Ctrl-C in a terminal reaches the child directly as well (same process group);
            # sending it once more is harmless, the child's stop runs once.
            child.send_signal(number)

    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
