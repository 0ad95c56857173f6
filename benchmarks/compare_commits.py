"""Before/after speed of the sampler: `sampler_speed.py` (this checkout's copy) against the package source of two commits.

Each commit's `src/` is checked out in a temporary `git worktree` and put first on `PYTHONPATH`, so the same
benchmark code measures both versions in one session on one machine, alternating runs to spread out noise.

Usage:
    python benchmarks/compare_commits.py BEFORE AFTER [--rounds 2] [-- extra sampler_speed.py arguments]
Prints one JSON object: each commit's best seconds per demasker call per batch size, and after/before ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_at(worktree: Path, extra: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(worktree / "src"))
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "sampler_speed.py"), "--skip-peer", "--output", out.name]
        subprocess.run(cmd + extra, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = json.loads(Path(out.name).read_text())
    probe = "import crocodil_hf, sys; sys.stdout.write(crocodil_hf.__file__)"
    where = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
    if not where.stdout.startswith(str(worktree)):
        raise RuntimeError(f"measured {where.stdout}, not the worktree {worktree}: is PYTHONPATH ignored?")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per commit; the best is kept")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    commits = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for name in (args.before, args.after):
            sha = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", name], check=True, capture_output=True, text=True
            ).stdout.strip()
            tree = Path(tmp) / sha[:12]
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha],
                check=True,
                capture_output=True,
            )
            trees[name] = (sha, tree)
        try:
            runs = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, (_, tree) in trees.items():
                    runs[name].append(run_at(tree, extra))
        finally:
            for _, tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    for name, results in runs.items():
        best = {}
        for result in results:
            for row in result["batches"]:
                best[row["batch"]] = min(best.get(row["batch"], float("inf")), row["s_per_call"])
        overhead = min(r["overhead"]["ratio"] for r in results)
        commits[name] = {"sha": trees[name][0], "s_per_call": best, "overhead_ratio": overhead}
    before, after = commits[args.before], commits[args.after]
    report = {
        "benchmark": "compare_commits",
        "sampler_speed_args": extra,
        "rounds": args.rounds,
        "before": before,
        "after": after,
        "after_over_before_s_per_call": {
            b: after["s_per_call"][b] / before["s_per_call"][b] for b in before["s_per_call"]
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
