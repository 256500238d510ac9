"""Start-up cost of the ``alerts`` command: import time of its module, and the wall time of
``alerts check`` and ``alerts explain``, side by side with a baseline checkout in the same run.

    python bench/startup.py [--baseline-rev 9cee310] [--runs 7]

The baseline is a temporary ``git worktree`` of ``--baseline-rev`` (default: the last commit before
the package layout), run with the same interpreter and the same shipped ``config/``; its command
module was ``alerts.cli``, today's is ``alerts.service.cli``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("alerts.service.cli", "alerts.cli")


def cli_module(tree: Path) -> str:
    """The command's module in ``tree``."""
    return next(m for m in MODULES if (tree / (m.replace(".", "/") + ".py")).exists())


def env_for(tree: Path) -> dict[str, str]:
    """The environment that makes ``tree``'s package the one imported."""
    return {**os.environ, "PYTHONPATH": str(tree), "ALERTS_CONFIG": str(ROOT / "config"), "REDIS_URL": ""}


def import_ms(tree: Path, runs: int) -> float:
    """Median cumulative import time of the command module, from ``python -X importtime``."""
    module = cli_module(tree)
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            env=env_for(tree),
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        match = re.search(rf"\|\s*(\d+)\s*\|\s*{re.escape(module)}\s*$", out, re.M)
        assert match, out[-500:]
        times.append(int(match.group(1)) / 1000)
    return statistics.median(times)


def wall_ms(tree: Path, args: list[str], runs: int) -> float:
    """Median wall time of ``python -m <command module> ARGS``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", cli_module(tree), *args],
            env=env_for(tree),
            cwd=tree,
            capture_output=True,
            text=True,
        )
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode:
            raise SystemExit(f"{cli_module(tree)} {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-rev", default="9cee310")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        baseline = Path(scratch) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline), args.baseline_rev],
            capture_output=True,
            check=True,
        )
        try:
            rows = [
                ("import of the command module", lambda tree: import_ms(tree, args.runs)),
                ("alerts check (shipped config)", lambda tree: wall_ms(tree, ["check"], args.runs)),
                (
                    "alerts explain (shipped config)",
                    lambda tree: wall_ms(tree, ["explain", "Israeli strikes"], args.runs),
                ),
            ]
            print(f"{'':34} {'baseline ' + args.baseline_rev:>18} {'today':>10} {'ratio':>7}")
            for name, measure in rows:
                before, after = measure(baseline), measure(ROOT)
                print(f"{name:34} {before:15.0f} ms {after:7.0f} ms {after / before:7.2f}")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False
            )


if __name__ == "__main__":
    main()
