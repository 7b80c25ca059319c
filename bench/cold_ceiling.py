#!/usr/bin/env python3
"""How much can any model of fedtest's features move a late joiner's first builds? (issue 3, item 1)

Federation can only change the weights a repository plans with: the global model is the same
23 features, the same logistic model. So the most it can do for a late joiner's first 50
scored builds is what the best weights for that repository would do. This measures that
ceiling, two ways, on each late joiner L:

  replay   L's first --builds builds replayed through the real binary exactly as
           bench/federation.py replays its no-federation arm (plan, score, record; the local
           model trains as usual once it has enough failures), once per prior
           (FEDTEST_PRIOR): fitted on jinja only ("public": data a shipped prior could be
           fitted on, none of the federation's), on the other three histories (LOHO: what a
           federation of them could know at most), on L itself (in-sample: an oracle no real
           repository has before its builds run), and the embedded prior (fitted on all four).
  ranker   offline, from the examples fedtest stores for L (features as at plan time, label,
           natural weight): the mean per-build weighted AUC of L's failing builds — how well
           each weight vector orders one build's tests, the quantity APFD rewards — for the
           public and LOHO priors, and for a pairwise (within-build) logistic ranker fitted
           in-sample on L: the best linear ordering of these features for L's own builds.

If even the in-sample weights do not raise the first 50 builds above the public prior, no
global model can: the first builds' failures are either repeats that every sensible weight
vector already puts first, or first-time failures that no feature ranks.

Usage: python3 bench/cold_ceiling.py [--cache DIR] [--late iofrol,dune,druid] [--jobs 2]
"""
import argparse, concurrent.futures as cf, json, os, sys, tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import federation as F  # noqa: E402  (the no-federation replay arm and history loader)
import fit_prior as P  # noqa: E402  (examples through the binary, the prior's fit)

HISTORIES = ["iofrol", "dune", "druid", "jinja"]


def weighted_auc(score, y, w):
    """AUC of `score` for labels `y` with example weights `w`, ties counted half."""
    o = np.argsort(score, kind="stable")
    s, y, w = score[o], y[o], w[o]
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    acc, below, i = 0.0, 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        wp, wn = w[i:j][y[i:j] == 1].sum(), w[i:j][y[i:j] == 0].sum()
        acc += wp * (below + 0.5 * wn)
        below += wn
        i = j
    return acc / (pos * neg)


def failing_builds(seq, y):
    """Masks of the builds with at least one failing and one passing example, oldest first."""
    out = []
    for s in np.unique(seq):
        m = seq == s
        if y[m].any() and not y[m].all():
            out.append(m)
    return out


def pairwise_ranker(X, y, natural, builds, l2=1.0, pairs=400, seed=1):
    """Logistic regression on (failing − passing) feature differences within each build, every
    build weighted the same: the within-build ordering objective, fitted by Newton's method."""
    rng = np.random.default_rng(seed)
    diffs, weights = [], []
    for m in builds:
        idx = np.flatnonzero(m)
        f, p = idx[y[idx] == 1], idx[y[idx] == 0]
        k = min(pairs, len(f) * len(p))
        fi = rng.choice(f, k)
        pi = rng.choice(p, k, p=natural[p] / natural[p].sum())
        diffs.append(X[fi] - X[pi])
        weights.append(np.full(k, 1.0 / k))
    D, w = np.vstack(diffs), np.concatenate(weights)
    beta = np.zeros(D.shape[1])
    for _ in range(50):
        q = 1.0 / (1.0 + np.exp(-(D @ beta)))
        g = -D.T @ (w * (1 - q)) + l2 * beta
        H = (D * (w * q * (1 - q))[:, None]).T @ D + l2 * np.eye(len(beta))
        step = np.linalg.solve(H, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


def replay(args, late, prior, tmp):
    repo = F.Repo(args.fedtest, tmp, late, F.load(late, args.builds), prior=prior)
    while not repo.done():
        repo.step()
    if repo.ft.errors:
        raise SystemExit(f"{late}: {repo.ft.errors} fedtest errors")
    k = args.first
    return F.mean(repo.apfd[:k]), F.mean(repo.apfd[k:]), len(repo.apfd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fedtest", default=os.path.join(F.ROOT, "target", "release", "fedtest"))
    ap.add_argument("--late", default="iofrol,dune,druid")
    ap.add_argument("--public", default="jinja", help="the histories a shipped prior is fitted on")
    ap.add_argument("--builds", type=int, default=300, help="cap on the late joiner's builds (as federation.py)")
    ap.add_argument("--first", type=int, default=50)
    ap.add_argument("--cache", help="examples cache (as fit_prior.py --cache)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    args.fedtest = os.path.abspath(args.fedtest)
    tmp = tempfile.mkdtemp(prefix="cold-ceiling-", dir=args.tmp)
    lates = [h for h in args.late.split(",") if h]
    public = [h for h in args.public.split(",") if h]
    ex = {h: P.examples(args.fedtest, h, args.cache, tmp) for h in HISTORIES}
    names = ex[HISTORIES[0]][0]

    def prior(hs):
        return P.prior_model(names, [(ex[h][1], ex[h][2], ex[h][3]) for h in hs])

    priors = {}
    for late in lates:
        for kind, hs in (("public", public), ("loho", [h for h in HISTORIES if h != late]), ("self", [late])):
            path = os.path.join(tmp, f"{kind}-{late}.json")
            with open(path, "w") as f:
                json.dump(prior(hs), f)
            priors[(late, kind)] = path
        priors[(late, "embedded")] = None

    jobs = {}
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        for (late, kind), path in priors.items():
            jobs[(late, kind)] = pool.submit(replay, args, late, path, tmp)
        got = {k: f.result() for k, f in jobs.items()}

    k = args.first
    print(f"\nReplay through the real binary, no federation, L's first <= {args.builds} builds: mean APFD, "
          f"first {k} scored builds / the rest")
    print(f"| late joiner | public prior ({'+'.join(public)}) | LOHO prior | in-sample prior (oracle) | embedded prior |")
    print("|---|---|---|---|---|")
    for late in lates:
        cells = [got[(late, kind)] for kind in ("public", "loho", "self", "embedded")]
        print(f"| {late} | " + " | ".join(f"{a:.4f} / {b:.4f}" for a, b, _ in cells) + " |")

    print(f"\nBest linear ordering (offline, stored examples): mean per-build weighted AUC, first {k} failing builds / all")
    print("| late joiner | public prior | LOHO prior | in-sample pairwise ranker (ceiling) | builds |")
    print("|---|---|---|---|---|")
    for late in lates:
        _, X, y, _, seq, natural = ex[late]
        builds = failing_builds(seq, y)
        rank = pairwise_ranker(X, y, natural, builds)
        rows = []
        for beta in (np.array(prior(public)["weights"]),
                     np.array(prior([h for h in HISTORIES if h != late])["weights"]), rank):
            aucs = [weighted_auc(X[m] @ beta, y[m], natural[m]) for m in builds]
            rows.append(f"{np.mean(aucs[:k]):.4f} / {np.mean(aucs):.4f}")
        print(f"| {late} | " + " | ".join(rows) + f" | {len(builds)} |")


if __name__ == "__main__":
    main()
