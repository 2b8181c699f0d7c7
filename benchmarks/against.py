"""Run one benchmark against an earlier commit and the working tree, in the same run.

Usage::

    python benchmarks/against.py REV [--rounds N] -- e2e.py --quick
    python benchmarks/against.py REV -- sse_decode.py --events 2000

``REV`` is checked out into a temporary ``git worktree``; the benchmark script (from the
working tree, so both sides are measured by the same code) then runs ``--rounds`` times for
each side, alternating (base, current, base, current...), with ``PYTHONPATH`` pointing at
the side's package. Each run's own table is printed as it comes, and each writes its JSON
to ``benchmarks/results/against/<script>-<side>-<round>.json``. A refactor's "not slower"
is read from the two sides' tables printed one after the other on the same machine, in
the same minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, prepare the base worktree and run both sides."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: against.py REV [--rounds N] -- SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the commit to compare with (e.g. a tag or a hash)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side, alternating")
    args = parser.parse_args(argv[:split])
    script, *script_args = argv[split + 1 :]
    target = HERE / script
    if not target.is_file():
        print(f"no benchmark {script!r} in {HERE}", file=sys.stderr)
        return 2
    out_dir = HERE / "results" / "against"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coze-bench-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.rev],
            check=True,
        )
        try:
            sides = {"base": base, "current": ROOT}
            for round_no in range(args.rounds):
                for side, tree in sides.items():
                    print(
                        f"\n=== {script} · {side} ({args.rev if side == 'base' else 'HEAD+'})"
                        f" · round {round_no + 1}/{args.rounds} ===",
                        flush=True,
                    )
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    json_out = out_dir / f"{Path(script).stem}-{side}-{round_no + 1}.json"
                    subprocess.run(
                        [sys.executable, str(target), *script_args, "--json", str(json_out)],
                        env=env,
                        check=True,
                    )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
