#!/usr/bin/env python3
"""Leave-one-history-out: fit a prior on every history but one, replay that one with it.

For each recipe (bench/fit_prior.py, RECIPES) and each history H, a prior is fitted on all the
other histories (the four dune-common CI jobs are one test suite: holding out one of them holds
out all four) and H is replayed in process with it (`FEDTEST_PRIOR`, examples/replay.rs): the
prior as a candidate on its own, and fedtest's choice among the candidates (src/strategy/mod.rs).
The table compares both with the decayed-failure heuristic and the optimal order as the
official `replay.py` scores them (bench/prior/baselines.json).

    cargo build --profile fast --example replay
    python3 bench/prior/loho.py --recipes l2-1-clamped,anchored-30 --out /tmp/loho

`--recipes embedded` replays with the prior built into the replay binary (not held out).
Results: OUT/<recipe>/ex-<history>.json (the replay's JSON), OUT/<recipe>/no-<history>.json
(the prior), and the table on stdout (`--table` only prints it from OUT).
"""
import argparse, json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import fit_prior as P  # noqa: E402

BASE = json.load(open(os.path.join(HERE, "baselines.json")))
# Histories whose builds list their changed files (the rest are anonymised research datasets).
CHANGE_AWARE = ("jinja", "markupsafe", "itsdangerous", "more-itertools", "sqlparse", "pluggy", "flask")


def replay(binary, history, prior, args=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
    if prior:
        env["FEDTEST_PRIOR"] = prior
    out = subprocess.run([binary, *args], input=P.history_lines(history), capture_output=True, env=env, check=True)
    return json.loads(out.stdout)


def run(recipe, histories, ex, binary, out, args):
    d = os.path.join(out, recipe)
    os.makedirs(d, exist_ok=True)
    for h in histories:
        prior = None
        if recipe != "embedded":
            train = [t for t in P.HISTORIES if P.suite(t) != P.suite(h)]
            model = P.prior_model(ex[h][0], [(ex[t][1], ex[t][2], ex[t][3]) for t in train], recipe,
                                  [P.suite(t) for t in train])
            prior = os.path.join(d, f"no-{h}.json")
            with open(prior, "w") as f:
                json.dump(model, f, indent=1)
        r = replay(binary, h, prior, args)
        with open(os.path.join(d, f"ex-{h}.json"), "w") as f:
            json.dump(r, f)
        sys.stderr.write(f"{recipe} {h}: prior {cand(r, 'prior')['apfd']:.4f} fedtest {r['apfd']:.4f}\n")


def cand(r, name):
    return next((c for c in r["candidates"] if c["candidate"] == name), {"apfd": float("nan"),
                                                                          "recall_time_33": float("nan")})


def rows(d, histories):
    """Per history: the numbers of the table."""
    out = []
    for h in histories:
        p = os.path.join(d, f"ex-{h}.json")
        if not os.path.exists(p):
            continue
        r = json.load(open(p))
        b = BASE[h]
        exp, exp_rt, opt = b["exp-history"]["apfd"], b["exp-history"]["rt33"], b["optimal"]["apfd"]
        out.append(dict(history=h, exp=exp, exp_rt=exp_rt, opt=opt, prior=cand(r, "prior")["apfd"],
                        local=cand(r, "local")["apfd"], apfd=r["apfd"], rt33=r["recall_time_33"],
                        gap=(r["apfd"] - exp) / (opt - exp), prior_gap=(cand(r, "prior")["apfd"] - exp) / (opt - exp),
                        strategy=r["strategy"], switches=r["switches"],
                        ok=r["apfd"] >= exp - 0.005 and r["recall_time_33"] >= exp_rt - 0.01))
    return out


def summary(rs):
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    ca = [r for r in rs if r["history"] in CHANGE_AWARE]
    an = [r for r in rs if r["history"] not in CHANGE_AWARE]
    return dict(gap=mean([r["gap"] for r in rs]), gap_ca=mean([r["gap"] for r in ca]), gap_an=mean([r["gap"] for r in an]),
                prior_gap=mean([r["prior_gap"] for r in rs]), worst=min(r["apfd"] - r["exp"] for r in rs),
                worst_prior=min(r["prior"] - r["exp"] for r in rs), worst_rt=min(r["rt33"] - r["exp_rt"] for r in rs),
                within=sum(r["ok"] for r in rs), n=len(rs))


def table(d, histories):
    rs = rows(d, histories)
    print(f"\n{os.path.basename(d)}")
    print("| history | exp-history APFD / rt33 | optimal APFD | prior alone APFD | fedtest APFD / rt33 | gap closed | plans with (switches) |")
    print("|---|---|---|---|---|---|---|")
    for r in rs:
        flag = "" if r["ok"] else " **below**"
        print(f"| {r['history']} | {r['exp']:.4f} / {r['exp_rt']:.3f} | {r['opt']:.4f} | {r['prior']:.4f} ({r['prior'] - r['exp']:+.4f}) "
              f"| {r['apfd']:.4f} / {r['rt33']:.3f}{flag} | {100 * r['gap']:.1f}% | {r['strategy']} ({r['switches']}) |")
    s = summary(rs)
    print(f"\nmean gap closed {100 * s['gap']:.1f}% (change-aware {100 * s['gap_ca']:.1f}%, anonymised {100 * s['gap_an']:.1f}%); "
          f"prior alone {100 * s['prior_gap']:.1f}%; worst fedtest − exp {s['worst']:+.4f} APFD, {s['worst_rt']:+.3f} rt33; "
          f"worst prior − exp {s['worst_prior']:+.4f}; within bounds {s['within']}/{s['n']}")
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replay", default=os.path.join(P.ROOT, "target", "fast", "examples", "replay"))
    ap.add_argument("--recipes", default="embedded,l2-1-clamped")
    ap.add_argument("--histories", default=",".join(P.HISTORIES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", help="examples cache (one .npz per history)")
    ap.add_argument("--table", action="store_true", help="only print the tables of OUT")
    ap.add_argument("--replay-arg", action="append", default=[], help="passed to the replay (e.g. --no-changes)")
    args = ap.parse_args()
    binary = os.path.abspath(args.replay)
    histories = args.histories.split(",")
    if not args.table:
        ex = {h: (lambda e: (e[0], *P.compact(*e[1:4])))(P.examples(binary, h, args.cache)) for h in P.HISTORIES}
    for recipe in args.recipes.split(","):
        if not args.table:
            run(recipe, histories, ex, binary, args.out, args.replay_arg)
        table(os.path.join(args.out, recipe), histories)


if __name__ == "__main__":
    main()
