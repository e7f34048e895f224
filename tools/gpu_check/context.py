"""What every stage of the GPU check shares: the folders, the time budget, bounded commands and the log.
Standard library only."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TAIL_LINES = 20  # lines of a failed command's output quoted in a reason or the log


class StageSkipped(Exception):
    """A stage cannot run here; ``str()`` is the reason (one line), ``figures`` what it measured before."""

    def __init__(self, reason: str, figures: dict | None = None):
        super().__init__(reason)
        self.figures = figures or {}


class StageFailed(Exception):
    """A stage ran and failed; ``str()`` is the reason (one line), ``figures`` what it measured before."""

    def __init__(self, reason: str, figures: dict | None = None):
        super().__init__(reason)
        self.figures = figures or {}


@dataclass
class Command:
    """A finished (or timed-out) command."""

    args: list[str]
    returncode: int | None  # None: killed at its time limit
    output: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        """Whether the command was killed at its time limit."""
        return self.returncode is None

    def tail(self, lines: int = 3) -> str:
        """The first ``lines`` output lines that mention an error (CMake, compilers and TensorRT say "error"),
        else the last ``lines`` non-empty ones, joined with ' | '."""
        kept = [line.strip() for line in self.output.splitlines() if line.strip()]
        errors = [i for i, line in enumerate(kept) if "error" in line.lower() and not line.startswith("See also")]
        if not errors:
            return " | ".join(kept[-lines:])[:600]
        # An error line and the one after it (CMake and compilers put the explanation on the next line).
        quoted = [" ".join(kept[i:i + 2]) for i in errors[:lines]]
        return " | ".join(quoted)[:600]


@dataclass
class Context:
    """Folders, the deadline and the facts stages hand on (``facts``: stage 1's findings, ``built``: paths)."""

    out: Path
    build: Path
    deadline: float  # time.monotonic() by which every stage must be done
    budget: float = 0.0  # seconds the whole check was given
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)
    facts: dict = field(default_factory=dict)
    built: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)  # stage name -> StageResult, filled as stages finish

    def remaining(self) -> float:
        """Seconds left of the whole check's budget."""
        return self.deadline - time.monotonic()

    def log(self, text: str) -> None:
        """Append ``text`` to gpu_check.log under the output folder and echo it."""
        print(text, flush=True)
        with open(self.out / "gpu_check.log", "a", encoding="utf-8") as log:
            log.write(text + "\n")

    def run(self, args: list[str | os.PathLike], limit: float, env: dict | None = None,
            cwd: Path = REPO_ROOT) -> Command:
        """Run ``args`` for at most ``limit`` seconds (less when the whole budget has less left), output
        captured (stdout and stderr together) and appended to the log; never raises for a failing command."""
        limit = max(1.0, min(limit, self.remaining()))
        args = [str(a) for a in args]
        shown = " ".join(args).replace("\n", " ")
        self.log(f"$ {shown if len(shown) <= 200 else shown[:200] + ' ...'}    (limit {limit:.0f} s)")
        start = time.monotonic()
        try:
            done = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace", timeout=limit)
            command = Command(args, done.returncode, done.stdout, time.monotonic() - start)
        except subprocess.TimeoutExpired as expired:
            output = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) \
                else expired.stdout or ""
            command = Command(args, None, output, time.monotonic() - start)
        except OSError as error:
            command = Command(args, 127, f"{args[0]}: {error}", time.monotonic() - start)
        with open(self.out / "gpu_check.log", "a", encoding="utf-8") as log:
            log.write(command.output if command.output.endswith("\n") or not command.output
                      else command.output + "\n")
            status = "timed out" if command.timed_out else f"exit {command.returncode}"
            log.write(f"  -> {status} after {command.seconds:.1f} s\n")
        return command

    def require(self, command: Command, what: str, figures: dict | None = None) -> Command:
        """``command`` when it exited 0; else StageFailed naming ``what``, the exit status and the output's end,
        carrying the stage's ``figures`` so far."""
        if command.timed_out:
            raise StageFailed(f"{what} timed out after {command.seconds:.0f} s", figures)
        if command.returncode != 0:
            raise StageFailed(f"{what} failed (exit {command.returncode}): {command.tail()}", figures)
        return command
