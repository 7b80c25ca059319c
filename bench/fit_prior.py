#!/usr/bin/env python3
"""Fit a prior on some histories only, for leave-one-history-out measurements.

The embedded prior (src/model/prior.rs) was fitted on every history below, so a replay of one
of them with the embedded prior has seen its own data. This script fits the same kind of model
on the histories given, through fedtest's own features:

  1. each history's training examples — the rows `fedtest record` stores after each build
     (features as at plan time, label, per-build balanced weight; src/history/state.rs) — are
     made by `examples/replay.rs --harvest` (the state code of `record`, in process: seconds),
     or with `--record` by replaying the history through the real binary's `record` and reading
     them out of its SQLite store (minutes; the route `bench/cold_ceiling.py` uses);
  2. each history's weights are scaled to the same total (so a long history does not drown a
     short one; the four dune-common CI jobs share one history's total: they are one test
     suite), and a weighted logistic regression is fitted by Newton's method — the objective
     of src/model/logistic.rs. The recipe of the embedded prior (`--recipe anchored-10`): the
     decayed-failure heuristic's own score (src/strategy/mod.rs, `heuristic`) is a feature with a
     free weight, and every other weight is pulled toward zero by L2 = 10 — so the prior is
     the heuristic plus corrections the data pay for, and a strong pull leaves the heuristic;
  3. the result is written as a model.json that `FEDTEST_PRIOR=FILE` makes fedtest use instead
     of the embedded prior (client and `fedtest serve` alike).

    cargo build --profile fast --example replay
    python3 bench/fit_prior.py --train dune,druid,jinja --out /tmp/prior-no-iofrol.json

Histories are named (`iofrol`, `markupsafe`, `pluggy`, `retrofit`, ...: `HISTORIES`) or given as
paths. `bench/prior/loho.py` fits and replays every leave-one-history-out prior.
`--check` fits and prints how close the result is to the embedded prior.
"""
import argparse, json, os, sqlite3, struct, subprocess, sys, tempfile

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: threads only contend
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "bench"))

# Every history fedtest is measured on: name -> file, relative to the repository root (the shared
# benchmark bundle sits next to the checkout as ../shared).
HISTORIES = {
    "iofrol": "../shared/data/iofrol.jsonl.gz",
    "dune": "../shared/data/dune.jsonl.gz",
    "druid": "../shared/data/druid.jsonl.gz",
    "jinja": "../shared/data/jinja.jsonl.gz",
    "markupsafe": "../shared/data/fleet/markupsafe.jsonl.gz",
    "itsdangerous": "../shared/data/fleet/itsdangerous.jsonl.gz",
    "more-itertools": "../shared/data/fleet/more-itertools.jsonl.gz",
    "sqlparse": "../shared/data/fleet/sqlparse.jsonl.gz",
    "pluggy": "bench/fleet/pluggy.jsonl.gz",
    "flask": "bench/fleet/flask.jsonl.gz",
    "deeplearning4j": "bench/histories/deeplearning4j.jsonl.gz",
    "retrofit": "bench/histories/retrofit.jsonl.gz",
    "dune-debian10-clang7": "bench/histories/dune-debian10-clang7.jsonl.gz",
    "dune-debian11-gcc10": "bench/histories/dune-debian11-gcc10.jsonl.gz",
    "dune-ubuntu2004-clang10": "bench/histories/dune-ubuntu2004-clang10.jsonl.gz",
}
# Histories that are one test suite (per-CI-job histories of dune-common: bench/histories/README.md).
# They share one history's weight in a fit, and leave-one-history-out leaves them out together.
SUITES = {h: "dune" for h in ("dune", "dune-debian10-clang7", "dune-debian11-gcc10", "dune-ubuntu2004-clang10")}

CLAMPED = ("own_file_changed", "cofailure_with_changes")
# The decayed-failure heuristic as a linear score (src/strategy/mod.rs, `heuristic`).
HEURISTIC = {"new_test": 2.0, "decayed_failures_0_8_log": 1.0}
COLS = 4  # seq, failed, weight, natural — then the features (examples/replay.rs --harvest)


def suite(h):
    return SUITES.get(h, h)


def name_of(history):
    """A history's name: itself when registered, else its file name without .jsonl.gz."""
    if history in HISTORIES:
        return history
    return os.path.basename(history).removesuffix(".gz").removesuffix(".jsonl")


def path_of(history):
    return os.path.join(ROOT, HISTORIES[history]) if history in HISTORIES else os.path.abspath(history)


def feature_names():
    """fedtest's feature names, in vector order, read from src/features.rs."""
    src = open(os.path.join(ROOT, "src", "features.rs")).read()
    block = src.split("pub const NAMES: &[&str] = &[", 1)[1].split("];", 1)[0]
    return [line.strip().strip(",").strip('"') for line in block.splitlines() if line.strip().startswith('"')]


def history_lines(history):
    """A history's JSON lines, decompressed: what examples/replay.rs reads on stdin."""
    with open(path_of(history), "rb") as f:
        return subprocess.run(["gzip", "-dc"], stdin=f, capture_output=True, check=True).stdout


def harvest_fast(replay_bin, history):
    """`examples/replay.rs --harvest` on one history: (names, X, y, w, seq, natural)."""
    out = subprocess.run([replay_bin, "--harvest"], input=history_lines(history), capture_output=True,
                         check=True).stdout
    names = feature_names()
    rows = np.frombuffer(out, dtype="<f8").reshape(-1, COLS + len(names))
    return (names, rows[:, COLS:].copy(), rows[:, 1].copy(), rows[:, 2].copy(), rows[:, 0].astype(np.int64),
            rows[:, 3].copy())


def harvest(binary, history, tmp, cycles=None):
    """Replay one history with `record` only; return (names, X, y, w, seq, natural) of every
    stored example: features, label, per-build balanced weight, build sequence number and
    natural weight (the inverse of the passing examples' sampling rate). `cycles`: the
    history's builds when the caller has them loaded already (e.g. cut short)."""
    import replay as R  # noqa: E402  (../shared/bench: history loader, JUnit writer, CLI driver)
    name = name_of(history)
    d = tempfile.mkdtemp(prefix=f"prior-{name}-", dir=tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
    ft = R.Fedtest(binary, d, name=name, env=env)
    ft.env = env
    ft.work = tempfile.mkdtemp(prefix=f"work-{name}-", dir=tmp)
    rows, last = [], 0
    db = os.path.join(d, "history.sqlite")
    for cyc in cycles if cycles is not None else R.load_cycles(path_of(history)):
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
        # A report record refuses (flask: five builds with an unnamed testcase) adds no
        # examples, exactly as in the replays; say so and go on.
        sys.stderr.write(f"{name}: {ft.errors} builds refused by record while harvesting\n")
    names = json.loads(subprocess.run([binary, "--data-dir", d, "model", "--json"], capture_output=True,
                                      text=True, env=env, check=True).stdout)["features"]
    X = np.array([r[2] for r in rows], dtype=float)
    y = np.array([r[0] for r in rows], dtype=float)
    w = np.array([r[1] for r in rows], dtype=float)
    seq = np.array([r[3] for r in rows], dtype=np.int64)
    natural = np.array([r[4] for r in rows], dtype=float)
    return names, X, y, w, seq, natural


def examples(binary, history, cache=None, tmp=None):
    """The history's examples, through a cache directory when one is given (one .npz per
    history; a cache from an older version of this script, without seq/natural, is harvested
    again). `binary` is the replay example (in-process harvest) or, when its name is
    `fedtest`, the real binary (harvest through `record`)."""
    name = name_of(history)
    cached = cache and os.path.join(cache, f"{name}.npz")
    if cached and os.path.exists(cached):
        z = np.load(cached, allow_pickle=False)
        if "seq" in z.files:
            return list(z["names"]), z["X"], z["y"], z["w"], z["seq"], z["natural"]
    if os.path.basename(binary).startswith("fedtest"):
        names, X, y, w, seq, natural = harvest(binary, history, tmp)
    else:
        names, X, y, w, seq, natural = harvest_fast(binary, history)
    if cached:
        os.makedirs(cache, exist_ok=True)
        np.savez(cached, names=np.array(names), X=X, y=y, w=w, seq=seq, natural=natural)
    return names, X, y, w, seq, natural


def compact(X, y, w):
    """The same examples with identical (features, label) rows merged, their weights summed:
    the same objective, a fraction of the rows (a fit of many priors runs on these)."""
    A = np.hstack([X, y[:, None]])
    A, inv = np.unique(A, axis=0, return_inverse=True)
    return A[:, :-1], A[:, -1], np.bincount(inv.ravel(), weights=w, minlength=len(A))


def fit(X, y, w, l2=1.0, iters=100, free=()):
    """Newton's method on Σ wᵢ·logloss + ½·l2·‖β‖² (intercept last and the columns `free`
    unpenalised)."""
    n, d = X.shape
    Z = np.hstack([X, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, float(l2))
    reg[d] = 0.0
    for j in free:
        reg[j] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ beta, -500, 500)))
        g = Z.T @ (w * (p - y)) + reg * beta
        H = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(H, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta[:d], beta[d]


# Recipes: how a prior is fitted from the pooled examples.
#   l2          L2 toward zero on every weight (the intercept free)
#   anchored    the heuristic's score as one more feature with a free weight (so the pull is
#               toward "the heuristic, scaled", not toward zero); folded back into the weights
#   features    only these features may have weights of their own (the rest are zero)
#   clamp       these weights may not be negative
CHANGES = ("changes_known", "own_file_changed", "cofailure_with_changes", "path_similarity", "changed_files_log")
NOT_GROUP = tuple(n for n in feature_names() if not n.startswith(("repo_", "module_", "family_")))
RECIPES = {
    "l2-1-clamped": dict(l2=1.0, clamp=CLAMPED),  # the recipe of the prior until issue 10
    "l2-1": dict(l2=1.0),
    "l2-10": dict(l2=10.0),
    "l2-100": dict(l2=100.0),
    "l2-1000": dict(l2=1000.0),
    "small": dict(l2=1.0, features=("new_test", "failed_last_run", "decayed_failures_0_8_log",
                                    "decayed_failures_0_95_log", "fail_rate_all_logit", "changes_known",
                                    "own_file_changed", "cofailure_with_changes", "path_similarity")),
    "anchored-changes": dict(l2=10.0, anchored=True, features=CHANGES),
    "anchored-history-changes": dict(l2=10.0, anchored=True, features=CHANGES + ("failed_last_run", "decayed_failures_0_95_log", "fail_rate_all_logit", "consecutive_failures_log", "runs_since_failure_log", "never_failed")),
    "l2-10-nogroup": dict(l2=10.0, features=NOT_GROUP),
    "anchored-10-nogroup": dict(l2=10.0, anchored=True, features=NOT_GROUP),
    "anchored-10-nochanges": dict(l2=10.0, anchored=True, features=tuple(n for n in feature_names() if n not in CHANGES)),
    "anchored-1": dict(l2=1.0, anchored=True),
    "anchored-10": dict(l2=10.0, anchored=True),
    "anchored-30": dict(l2=30.0, anchored=True),
    "anchored-100": dict(l2=100.0, anchored=True),
    "anchored-1000": dict(l2=1000.0, anchored=True),
}


def recipe_opts(name):
    """A recipe by name: one of RECIPES, or `l2-<λ>` / `anchored-<λ>` at any strength."""
    if name in RECIPES:
        return RECIPES[name]
    kind, _, l2 = name.rpartition("-")
    if kind in ("l2", "anchored"):
        return dict(l2=float(l2), anchored=kind == "anchored")
    raise SystemExit(f"unknown recipe {name}: {', '.join(RECIPES)}, l2-<λ> or anchored-<λ>")


def fit_recipe(names, X, y, w, l2=1.0, anchored=False, features=None, clamp=()):
    """Weights (in `names` order) and intercept of one recipe on pooled examples."""
    cols = [i for i, n in enumerate(names) if features is None or n in features]
    Xs = X[:, cols]
    free = ()
    if anchored:
        h = np.zeros(len(names))
        for n, v in HEURISTIC.items():
            h[names.index(n)] = v
        Xs = np.hstack([Xs, (X @ h)[:, None]])
        free = (len(cols),)
    beta, intercept = fit(Xs, y, w, l2=l2, free=free)
    weights = np.zeros(len(names))
    weights[cols] = beta[: len(cols)]
    if anchored:
        weights += beta[len(cols)] * h
    for n in clamp:
        i = names.index(n)
        weights[i] = max(0.0, weights[i])
    return weights, intercept


def prior_model(names, parts, recipe="l2-1-clamped", groups=None):
    """The model.json of a prior fitted on `parts` [(X, y, w) per history] by `recipe` (a
    name in RECIPES or a dict), each history's weight scaled to the same total; histories
    with the same `groups` label share one history's total."""
    opts = recipe_opts(recipe) if isinstance(recipe, str) else recipe
    groups = groups or list(range(len(parts)))
    size = {g: groups.count(g) for g in groups}
    total = np.mean([w.sum() for _, _, w in parts])
    X = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] * (total / p[2].sum() / size[g]) for p, g in zip(parts, groups)])
    weights, intercept = fit_recipe(names, X, y, w, **opts)
    return {"schema": 1, "source": "prior", "features": names, "weights": [round(float(v), 4) for v in weights],
            "intercept": round(float(intercept), 4), "calibration": [1.0, 0.0], "trained_examples": int(len(y)),
            "trained_failures": int(y.sum()), "trained_builds": 0,
            "holdout": {"builds": 0, "examples": 0, "failures": 0, "auc": None, "log_loss": None,
                        "base_log_loss": None}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replay", default=os.path.join(ROOT, "target", "fast", "examples", "replay"),
                    help="the replay example (cargo build --profile fast --example replay)")
    ap.add_argument("--record", metavar="FEDTEST", help="harvest through this fedtest binary's `record` instead")
    ap.add_argument("--train", default=",".join(HISTORIES), help="histories to fit on: names or paths")
    ap.add_argument("--recipe", default="anchored-10", help=f"{', '.join(RECIPES)}, l2-<λ> or anchored-<λ>")
    ap.add_argument("--out", help="model.json to write")
    ap.add_argument("--check", action="store_true", help="compare with the embedded prior")
    ap.add_argument("--rust", action="store_true", help="print the weights as src/model/prior.rs holds them")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--cache", help="keep each history's examples here and reuse them (same binary only)")
    args = ap.parse_args()
    binary = os.path.abspath(args.record or args.replay)
    parts, names, groups = [], None, []
    for h in args.train.split(","):
        names, X, y, w, _, _ = examples(binary, h, args.cache, args.tmp)
        parts.append((X, y, w))
        groups.append(suite(name_of(h)))
        sys.stderr.write(f"{name_of(h)}: {len(y)} examples, {int(y.sum())} failures, weight {w.sum():.1f}\n")
    model = prior_model(names, parts, args.recipe, groups)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(model, f, indent=2)
    if args.rust:
        for n, v in zip(names, model["weights"]):
            print(f"    {v:.4f}, // {n}")
        print(f"const INTERCEPT: f64 = {model['intercept']:.4f};")
    if args.check:
        fedtest = os.path.join(os.path.dirname(binary), "..", "fedtest") if not args.record else binary
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
        d = tempfile.mkdtemp(dir=args.tmp)
        emb = json.loads(subprocess.run([fedtest, "--data-dir", d, "model", "--json"], capture_output=True,
                                        text=True, env=env, check=True).stdout)
        a, b = np.array(emb["weights"]), np.array(model["weights"])
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        print(f"cosine to the embedded prior {cos:.3f}; intercept {model['intercept']} vs {emb['intercept']}")
        for n, x, e in zip(names, b, a):
            print(f"  {n:28s} {x:8.4f} {e:8.4f}")
    if not args.out and not args.check and not args.rust:
        print(json.dumps(model, indent=2))


if __name__ == "__main__":
    main()
