#!/usr/bin/env python3
"""Does `fedtest eval`'s confidence curve say what the real plans do? (issue 17)

For one history: its first N builds (N ≤ the store's 100 retained builds, so `eval` replays
exactly the builds the CI-style replay ran) are replayed through the real binary at each
budget with the benchmark's `replay.py --budget` driver (plan before each build, record
after it, as CI would). The data directory that run leaves behind is then given to
`fedtest eval --warmup 0 --format json`, and its fedtest curve at the same budgets is
compared with what the plans really did: the share of test time run, the mean recall of
failing tests, and the share of builds caught (builds without failures count as caught).

    python3 bench/curve_agreement.py data/jinja.jsonl.gz --fedtest target/release/fedtest \\
        --replay-py bench/replay.py [--builds 100] [--budgets 10,30,50]

Prints one JSON line per budget and exits 1 when any difference exceeds --tolerance (0.02).
"""
import argparse, gzip, json, os, subprocess, sys, tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("history")
    ap.add_argument("--fedtest", required=True)
    ap.add_argument("--replay-py", required=True, help="the benchmark's replay.py")
    ap.add_argument("--builds", type=int, default=100)
    ap.add_argument("--budgets", default="10,30,50")
    ap.add_argument("--tolerance", type=float, default=0.02)
    args = ap.parse_args()
    binary = os.path.abspath(args.fedtest)
    sys.path.insert(0, os.path.dirname(os.path.abspath(args.replay_py)))
    import replay as R  # noqa: E402

    cycles = list(R.load_cycles(os.path.abspath(args.history)))[: args.builds]
    # Outside any git repository, so no build key leaks in from the caller's checkout, and
    # without CI variables: the plan's exploration draw is then the same one `eval` replays.
    work = tempfile.mkdtemp(prefix="curve-agreement-")
    os.chdir(work)
    for k in list(os.environ):
        if k.startswith(("FEDTEST_", "GITHUB_", "GITLAB_", "CI_")) or k == "CI":
            del os.environ[k]
    worst, curve = 0.0, None
    for b in [int(x) for x in args.budgets.split(",")]:
        d = tempfile.mkdtemp(prefix=f"data-{b}-", dir=work)
        got = R.replay_budget(cycles, R.Fedtest(binary, d, name=f"budget-{b}"), f"{b}%")
        if curve is None:
            p = subprocess.run([binary, "--data-dir", d, "eval", "--warmup", "0", "--format", "json"],
                               capture_output=True, text=True, check=True)
            curve = next(s for s in json.loads(p.stdout)["curve"]["series"] if s["ordering"] == "fedtest")
        point = curve["points"][b]
        caught = (got["builds"] - got["failing_builds"] + got["failing_builds_fully_caught"]) / got["builds"]
        diff = {
            "time_share": point["share"] - got["time_share_run"],
            "recall": point["recall"] - (got["recall"] if got["recall"] is not None else 1.0),
            "builds_caught": point["builds_caught"] - caught,
        }
        worst = max(worst, *(abs(v) for v in diff.values()))
        print(json.dumps({"history": os.path.basename(args.history), "budget": f"{b}%", "builds": got["builds"],
                          "replay": {"time_share": got["time_share_run"], "recall": got["recall"],
                                     "builds_caught": caught},
                          "eval": {"time_share": point["share"], "recall": point["recall"],
                                   "builds_caught": point["builds_caught"]},
                          "difference": diff}), flush=True)
    sys.exit(1 if worst > args.tolerance else 0)


if __name__ == "__main__":
    main()
