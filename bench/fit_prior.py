#!/usr/bin/env python3
"""Fit a prior on some histories only, for leave-one-history-out measurements.

The embedded prior (src/model/prior.rs) was fitted on all four shared histories, so a replay
of one of them with the embedded prior has seen its own data. This script fits the same kind
of model on the histories given, through the real binary's features:

  1. each history is replayed through `fedtest record` into its own data dir (every build, in
     order), and the training examples fedtest stores after each build (features, label,
     per-build balanced weight; src/history/state.rs) are read out of the SQLite store as
     they appear — the store keeps only the newest 200 builds of them;
  2. each history's weights are scaled to the same total (so a long history does not drown a
     short one), and a weighted logistic regression with L2 = 1 toward zero on the weights (the
     intercept free) is fitted by Newton's method — the objective of src/model/logistic.rs;
  3. the two change features that the embedded prior clamps at zero (own_file_changed,
     cofailure_with_changes) are clamped the same way;
  4. the result is written as a model.json that `FEDTEST_PRIOR=FILE` makes fedtest use instead
     of the embedded prior (client and `fedtest serve` alike).

    python3 bench/fit_prior.py --train dune,druid,jinja --out /tmp/prior-no-iofrol.json

`--check` fits on all four and prints how close the result is to the embedded prior (the
embedded one came from a research simulator; this is the same recipe on the Rust features).
"""
import argparse, json, os, sqlite3, struct, subprocess, sys, tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "bench"))
import replay as R  # noqa: E402  (history loader, JUnit writer, CLI driver)

CLAMPED = ("own_file_changed", "cofailure_with_changes")


def harvest(binary, history, tmp):
    """Replay one history with `record` only; return (names, X, y, w, seq, natural) of every
    stored example: features, label, per-build balanced weight, build sequence number and
    natural weight (the inverse of the passing examples' sampling rate)."""
    d = tempfile.mkdtemp(prefix=f"prior-{history}-", dir=tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
    ft = R.Fedtest(binary, d, name=history, env=env)
    ft.env = env
    ft.work = tempfile.mkdtemp(prefix=f"work-{history}-", dir=tmp)
    rows, last = [], 0
    db = os.path.join(d, "history.sqlite")
    for cyc in R.load_cycles(os.path.join(SHARED, "data", f"{history}.jsonl.gz")):
        ft.record(cyc)
        if not os.path.exists(db):
            continue
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            new = con.execute("SELECT seq, failed, weight, natural, features FROM examples WHERE seq > ? ORDER BY seq",
                              (last,)).fetchall()
        finally:
            con.close()
        for seq, failed, weight, natural, blob in new:
            rows.append((bool(failed), float(weight), struct.unpack(f"<{len(blob) // 4}f", blob), seq,
                         float(natural)))
            last = max(last, seq)
    if ft.errors:
        sys.exit(f"{history}: {ft.errors} fedtest errors while recording")
    names = json.loads(subprocess.run([binary, "--data-dir", d, "model", "--json"], capture_output=True,
                                      text=True, env=env, check=True).stdout)["features"]
    X = np.array([r[2] for r in rows], dtype=float)
    y = np.array([r[0] for r in rows], dtype=float)
    w = np.array([r[1] for r in rows], dtype=float)
    seq = np.array([r[3] for r in rows], dtype=np.int64)
    natural = np.array([r[4] for r in rows], dtype=float)
    return names, X, y, w, seq, natural


def examples(binary, history, cache=None, tmp=None):
    """`harvest`, through a cache directory when one is given (one .npz per history; a cache
    from an older version of this script, without seq/natural, is harvested again)."""
    cached = cache and os.path.join(cache, f"{history}.npz")
    if cached and os.path.exists(cached):
        z = np.load(cached, allow_pickle=False)
        if "seq" in z.files:
            return list(z["names"]), z["X"], z["y"], z["w"], z["seq"], z["natural"]
    names, X, y, w, seq, natural = harvest(binary, history, tmp)
    if cached:
        os.makedirs(cache, exist_ok=True)
        np.savez(cached, names=np.array(names), X=X, y=y, w=w, seq=seq, natural=natural)
    return names, X, y, w, seq, natural


def fit(X, y, w, l2=1.0, iters=100):
    """Newton's method on Σ wᵢ·logloss + ½·l2·‖β‖² (intercept last, unpenalised)."""
    n, d = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[d] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(Z @ beta)))
        g = Z.T @ (w * (p - y)) + reg * beta
        H = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(H, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta[:d], beta[d]


def prior_model(names, parts):
    """The model.json of a prior fitted on `parts` [(X, y, w) per history], each history's
    weight scaled to the same total, with the clamped change weights clamped."""
    total = np.mean([w.sum() for _, _, w in parts])
    X = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] * (total / p[2].sum()) for p in parts])
    weights, intercept = fit(X, y, w)
    for name in CLAMPED:
        i = names.index(name)
        weights[i] = max(0.0, weights[i])
    return {"schema": 1, "source": "prior", "features": names, "weights": [round(float(v), 4) for v in weights],
            "intercept": round(float(intercept), 4), "calibration": [1.0, 0.0], "trained_examples": int(len(y)),
            "trained_failures": int(y.sum()), "trained_builds": 0,
            "holdout": {"builds": 0, "examples": 0, "failures": 0, "auc": None, "log_loss": None,
                        "base_log_loss": None}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fedtest", default=os.path.join(ROOT, "target", "release", "fedtest"))
    ap.add_argument("--train", default="iofrol,dune,druid,jinja", help="histories to fit on")
    ap.add_argument("--out", help="model.json to write")
    ap.add_argument("--check", action="store_true", help="compare with the embedded prior")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--cache", help="keep each history's examples here and reuse them (same binary only)")
    args = ap.parse_args()
    binary = os.path.abspath(args.fedtest)
    parts, names = [], None
    for h in args.train.split(","):
        names, X, y, w, _, _ = examples(binary, h, args.cache, args.tmp)
        parts.append((X, y, w))
        sys.stderr.write(f"{h}: {len(y)} examples, {int(y.sum())} failures, weight {w.sum():.1f}\n")
    model = prior_model(names, parts)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(model, f, indent=2)
    if args.check:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
        d = tempfile.mkdtemp(dir=args.tmp)
        emb = json.loads(subprocess.run([binary, "--data-dir", d, "model", "--json"], capture_output=True,
                                        text=True, env=env, check=True).stdout)
        a, b = np.array(emb["weights"]), np.array(model["weights"])
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        print(f"cosine to the embedded prior {cos:.3f}; intercept {model['intercept']} vs {emb['intercept']}")
        for n, x, e in zip(names, b, a):
            print(f"  {n:28s} {x:8.4f} {e:8.4f}")
    if not args.out and not args.check:
        print(json.dumps(model, indent=2))


if __name__ == "__main__":
    main()
