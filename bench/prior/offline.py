#!/usr/bin/env python3
"""The prior alone, scored offline: leave-one-history-out APFD of many recipes in seconds.

`examples/replay.rs --harvest-plans` writes every failing build's executed tests with the
features `plan` computes for them; a linear prior's order is then a stable sort by its score,
exactly the replay's `prior` candidate (src/eval/replay.rs). This scores recipes (and variants
of them: L2 strengths, feature subsets) without replaying; loho.py replays the finalists,
where fedtest's choice among the candidates (and the local model, anchored to the prior) show.

    cargo build --profile fast --example replay
    python3 bench/prior/offline.py --cache /tmp/prior-npz [--recipes a,b,...]
"""
import argparse, os, subprocess, sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import fit_prior as P  # noqa: E402
import loho as L  # noqa: E402


def plans(replay_bin, history, cache=None):
    """(seq, failed, duration, X) of every executed test of every scored failing build."""
    cached = cache and os.path.join(cache, f"{history}.plans.npy")
    if cached and os.path.exists(cached):
        rows = np.load(cached)
    else:
        out = subprocess.run([replay_bin, "--harvest-plans"], input=P.history_lines(history), capture_output=True,
                             check=True).stdout
        rows = np.frombuffer(out, dtype="<f8").reshape(-1, P.COLS + len(P.feature_names())).copy()
        if cached:
            os.makedirs(cache, exist_ok=True)
            np.save(cached, rows)
    return rows[:, 0].astype(np.int64), rows[:, 1] > 0.5, rows[:, 2], rows[:, P.COLS:]


class Builds:
    """One history's scored builds, split once."""

    def __init__(self, seq, failed, dur, X):
        cut = np.flatnonzero(np.diff(seq)) + 1
        self.parts = [(failed[a:b], np.maximum(dur[a:b], 1e-3), X[a:b])
                      for a, b in zip(np.r_[0, cut], np.r_[cut, len(seq)])]

    def score(self, w):
        """Mean APFD and recall at 33% of the time of the order by X·w (stable, descending)."""
        apfd, rt = [], []
        for failed, cost, X in self.parts:
            order = np.argsort(-(X @ w), kind="stable")
            f = failed[order]
            n, m = len(f), f.sum()
            apfd.append(1.0 - (np.flatnonzero(f) + 1).sum() / (n * m) + 1.0 / (2 * n))
            c = np.cumsum(cost[order])
            budget = c[-1] * 0.33
            k = max(1, int(np.searchsorted(c, budget, side="right")))
            rt.append(f[:k].sum() / m)
        return float(np.mean(apfd)), float(np.mean(rt))


def loho_weights(ex, recipe, h):
    train = [t for t in P.HISTORIES if P.suite(t) != P.suite(h)]
    names = ex[h][0]
    m = P.prior_model(names, [(ex[t][1], ex[t][2], ex[t][3]) for t in train], recipe, [P.suite(t) for t in train])
    return np.array(m["weights"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replay", default=os.path.join(P.ROOT, "target", "fast", "examples", "replay"))
    ap.add_argument("--cache", help="examples and plans cache")
    ap.add_argument("--recipes", default=",".join(P.RECIPES))
    ap.add_argument("--embedded", help="also score these weights (a model.json): not held out")
    args = ap.parse_args()
    binary = os.path.abspath(args.replay)
    hs = list(P.HISTORIES)
    ex = {h: (lambda e: (e[0], *P.compact(*e[1:4])))(P.examples(binary, h, args.cache)) for h in hs}
    builds = {h: Builds(*plans(binary, h, args.cache)) for h in hs}
    names = ex[hs[0]][0]
    heur = np.zeros(len(names))
    for n, v in P.HEURISTIC.items():
        heur[names.index(n)] = v
    base = {h: builds[h].score(heur) for h in hs}
    print("history".ljust(24) + "".join(f"{r[:13]:>14}" for r in ["heuristic"] + args.recipes.split(",")))
    results = {r: {} for r in args.recipes.split(",")}
    for h in hs:
        for r in results:
            results[r][h] = builds[h].score(loho_weights(ex, r, h))
    for h in hs:
        b = L.BASE[h]
        line = f"{h[:23]:24}{base[h][0]:14.4f}"
        for r in results:
            line += f"{results[r][h][0] - base[h][0]:+14.4f}"
        print(line)
    gap = lambda r, h: (results[r][h][0] - base[h][0]) / (L.BASE[h]["optimal"]["apfd"] - base[h][0])  # noqa: E731
    print("mean gap".ljust(24) + " " * 14 + "".join(f"{100 * np.mean([gap(r, h) for h in hs]):13.1f}%" for r in results))
    print("worst Δ".ljust(24) + " " * 14 + "".join(f"{min(results[r][h][0] - base[h][0] for h in hs):+14.4f}" for r in results))
    print("worst Δrt33".ljust(24) + " " * 14 + "".join(f"{min(results[r][h][1] - base[h][1] for h in hs):+14.4f}" for r in results))


if __name__ == "__main__":
    main()
