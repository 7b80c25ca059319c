#!/usr/bin/env python3
"""Flaky-test detection benchmark: replay a real CI history through the real fedtest binary,
inject flakiness into a known random set of tests, and score what `fedtest flaky` finds.

    cargo build --release
    python3 bench/flaky.py ../shared/data/dune.jsonl.gz --fedtest target/release/fedtest

What it does, per build of the history (in time order), exactly as a CI job would:

  fedtest plan --tests FILE --budget 100% --format list      (only with --apfd)
  fedtest record --junit FILE --build ID --commit ID [--changed-files FILE]
  fedtest flaky --format json --min-score 0                  (at checkpoints)

Injection. A seeded random `--share` of the history's tests is made flaky. Each gets a per-run
failure probability p, drawn from the 107 rates MEASURED for real flaky tests (LAM2020_RATES
below: Lam et al., ISSRE 2020, 4,000 reruns each of flaky tests from the iDFlakies data set),
or log-uniformly from `--rates LO,HI`. Where the real verdict is a pass, the test fails with
probability p. In a share `--retry-share` of the builds (default 0.7) the job retries failed
tests once (nextest `retries`, Surefire `rerunFailingTestsCount`, pytest-rerunfailures): the
retry fails again with probability p (a plain failure), else passes (a *retry-visible* flake,
written half as two `<testcase>` rows like pytest-rerunfailures, half as nextest's
`<flakyFailure>` child). In the other builds every injected failure is a plain intermittent
failure. Real failures are kept as they are. Injection stops `--tail` builds before the end;
the tail measures how fast trust comes back. The retry share is an ASSUMPTION (`--retry-share
0` and `1` bound it).

Ground truth and metrics. At every checkpoint (every `--every` builds), each test with a
history is a sample: positive if injected. Precision = injected tests among those scoring at
least the threshold. Two recalls: over injected tests whose injected flakiness *showed* in
their last 20 runs (a failure or a retry flake; the detector can only see what happened, and
by design forgets a test after 20 clean runs) — the headline — and over all injected tests.
The real history's own tests are unlabelled: some of them are flaky in reality (dune-common's
t137..t139 fail alone every few builds). A second replay without injection finds the tests the
detector flags on the real history; they are reported, and counted as false positives in the
strict precision, excluded in the other.

Trust coming back: in the tail, every injected test flagged when injection stopped is followed;
the score must be under the threshold once its `flake_free_runs` reaches 20.

APFD (`--apfd`): the same history replayed with and without injection, `plan` before each
`record`; APFD is computed with replay.py's function on the REAL failures of each build only
(injected failures are not faults to find). The target is a drop < 0.01.
"""
import argparse, json, math, os, random, subprocess, sys, tempfile, time, zlib
from xml.sax.saxutils import quoteattr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench"))
try:
    from replay import apfd, load_cycles  # the shared replay's loader and scoring
except ImportError:  # pragma: no cover - a checkout without shared/ beside it
    sys.exit("bench/flaky.py needs ../shared/bench/replay.py (the shared replay benchmark)")

THRESHOLD = 0.5  # fedtest's default [flaky] threshold

# Measured per-run failure rates of real flaky tests: failures (errors + failures) in 4,000
# test-suite runs of each of the 107 flaky tests that Lam, Winter, Wei, Xie, Marinov and Bell
# reran in "Understanding Reproducibility and Characteristics of Flaky Tests Through Test
# Reruns in Java Projects" (ISSRE 2020) -- flaky tests of 26 open-source Java projects from
# the iDFlakies data set. Source: the study's artifact, TestingResearchIllinois/
# rerunning-no-tests, azure-data/rq-data/flake-rates/tso-flake-rate.csv (num_error + num_fail
# per row; one row ran 4,003 times, taken as 4,000). Median rate 0.48%; 60% fail in at most
# 1% of runs, 90% in at most 3%; three ZooKeeper tests fail half the time.
LAM2020_FAILURES_PER_4000 = [
    100, 6, 200, 100, 3, 200, 15, 3, 19, 9, 400, 2, 4, 3, 3, 4, 400, 4, 1, 16, 47, 455, 3, 2, 2,
    100, 118, 64, 10, 30, 73, 32, 21, 11, 4, 68, 25, 1, 28, 4, 13, 6, 4, 2, 6, 4, 6, 2, 109, 110,
    109, 51, 1, 4, 30, 1960, 2000, 1960, 1, 15, 16, 21, 1, 5, 62, 101, 2, 19, 95, 85, 68, 77, 2,
    1, 94, 1, 1, 63, 73, 45, 127, 90, 64, 49, 57, 20, 108, 2, 65, 76, 202, 80, 62, 1, 4, 45, 3,
    3, 28, 6, 3, 3, 3, 26, 3, 4, 434,
]
LAM2020_RATES = [n / 4000 for n in LAM2020_FAILURES_PER_4000]


def rng_for(seed, *parts):
    return random.Random(f"{seed}:" + ":".join(map(str, parts)))


class Injection:
    def __init__(self, cycles, share, rates, retry_share, tail, seed):
        """`rates` is either a list of measured rates to draw from (with replacement) or a
        (lo, hi) pair for a log-uniform draw."""
        ids = sorted({t["id"] for c in cycles for t in c["tests"] if t["verdict"] in ("pass", "fail")})
        rng = rng_for(seed, "pick")
        chosen = rng.sample(ids, max(1, round(len(ids) * share))) if share > 0 else []
        if isinstance(rates, tuple):
            lo, hi = rates
            self.rate = {t: math.exp(rng.uniform(math.log(lo), math.log(hi))) for t in chosen}
        else:
            self.rate = {t: rng.choice(rates) for t in chosen}
        self.retry_share, self.stop, self.seed = retry_share, len(cycles) - tail, seed

    def apply(self, idx, cyc):
        """The build's tests with outcomes: pass | fail | flaky | skip, and which were injected."""
        retries = rng_for(self.seed, "retry", idx).random() < self.retry_share
        out, shown = [], set()
        for t in cyc["tests"]:
            v = t["verdict"]
            o = {"pass": "pass", "fail": "fail"}.get(v, "skip")
            p = self.rate.get(t["id"])
            if p is not None and idx < self.stop and o == "pass":
                r = rng_for(self.seed, "run", idx, t["id"])
                if r.random() < p:
                    shown.add(t["id"])
                    o = ("fail" if r.random() < p else "flaky") if retries else "fail"
            out.append((t, o))
        return out, shown


def junit(tests, style_seed):
    rows = []
    nf = 0
    for t, o in tests:
        cls, _, name = t["id"].rpartition("::")
        attrs = f'classname={quoteattr(cls)} name={quoteattr(name)} time="{float(t.get("duration") or 0):.3f}"'
        if o == "fail":
            nf += 1
            rows.append(f'<testcase {attrs}><failure message="failed">failure</failure></testcase>')
        elif o == "skip":
            rows.append(f"<testcase {attrs}><skipped/></testcase>")
        elif o == "flaky":
            if zlib.crc32(f"{style_seed}:{t['id']}".encode()) % 2:
                # pytest-rerunfailures / gotestsum: the failed attempt, then the passing one
                rows.append(f'<testcase {attrs}><failure message="failed">first attempt</failure></testcase>')
                rows.append(f"<testcase {attrs}/>")
            else:
                # nextest / Surefire: one row that passed, with the failed attempt inside
                rows.append(f'<testcase {attrs}><flakyFailure message="failed">first attempt</flakyFailure></testcase>')
        else:
            rows.append(f"<testcase {attrs}/>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="bench" tests="{len(tests)}" '
            f'failures="{nf}">\n' + "\n".join(rows) + "\n</testsuite></testsuites>\n")


class Driver:
    def __init__(self, binary):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="flaky-bench-")
        self.data = os.path.join(self.dir, "data")
        self.errors = 0

    def run(self, args):
        p = subprocess.run([self.bin, "--data-dir", self.data, *args], capture_output=True, text=True,
                           cwd=self.dir, timeout=300)
        if p.returncode != 0:
            self.errors += 1
            if self.errors <= 3:
                sys.stderr.write(f"fedtest {args[0]} exit {p.returncode}: {p.stderr[-500:]}\n")
        return p

    def changed(self, cyc):
        if cyc.get("changed_files") is None:
            return []
        path = os.path.join(self.dir, "changed.txt")
        with open(path, "w") as f:
            f.write("\n".join(cyc["changed_files"]) + "\n")
        return ["--changed-files", path]

    def plan(self, cyc, ids):
        path = os.path.join(self.dir, "tests.txt")
        with open(path, "w") as f:
            f.write("\n".join(ids) + "\n")
        p = self.run(["plan", "--tests", path, "--budget", "100%", "--format", "list", *self.changed(cyc)])
        order, seen = [], set()
        for line in p.stdout.splitlines():
            t = line.strip()
            if t in ids and t not in seen:
                order.append(t)
                seen.add(t)
        return order + [t for t in ids if t not in seen]

    def record(self, cyc, tests, build):
        path = os.path.join(self.dir, "junit.xml")
        with open(path, "w") as f:
            f.write(junit(tests, build))
        self.run(["record", "--junit", path, "--build", build, "--commit", f"commit-{build}", *self.changed(cyc)])

    def scores(self):
        p = self.run(["flaky", "--format", "json", "--min-score", "0"])
        try:
            return {t["id"]: t for t in json.loads(p.stdout)["tests"]}
        except (ValueError, KeyError):
            return {}


def replay(cycles, binary, inj, every, warmup, do_apfd, label):
    d = Driver(binary)
    shown_runs = {}  # test -> list of bools (injected flakiness showed in that run)
    checkpoints, tail, apfds = [], [], []
    t0 = time.time()
    for idx, cyc in enumerate(cycles):
        tests, shown = inj.apply(idx, cyc)
        runnable = [t["id"] for t, o in tests if o != "skip"]
        real_fail = {t["id"] for t in cyc["tests"] if t["verdict"] == "fail"}
        if do_apfd and idx >= warmup and real_fail and len(runnable) > 1:
            order = d.plan(cyc, runnable)
            apfds.append(apfd(order, real_fail & set(runnable)))
        elif do_apfd and runnable:
            d.plan(cyc, runnable)
        d.record(cyc, tests, cyc["cycle"])
        for tid in runnable:
            shown_runs.setdefault(tid, []).append(tid in shown)
        if idx >= warmup and idx < inj.stop and (idx - warmup) % every == 0:
            sc = d.scores()
            recent = {t for t, runs in shown_runs.items() if any(runs[-20:])}
            checkpoints.append({"idx": idx, "scores": {k: v["score"] for k, v in sc.items()}, "shown": recent})
        if idx >= inj.stop and inj.rate:
            sc = d.scores()
            tail.append({k: (v["score"], v["flake_free_runs"]) for k, v in sc.items() if k in inj.rate})
        if idx % 200 == 0:
            sys.stderr.write(f"[{label}] build {idx}/{len(cycles)} {time.time() - t0:.0f}s\n")
    return {"checkpoints": checkpoints, "tail": tail, "apfd": apfds, "errors": d.errors,
            "final": d.scores()}


def pr(checkpoints, clean, inj, threshold, exclude_unlabelled):
    tp = fp = pos = posv = tpv = amb = 0
    for cp, ccp in zip(checkpoints, clean):
        for tid, s in cp["scores"].items():
            flagged = s >= threshold
            if tid in inj.rate:
                pos += 1
                tp += flagged
                if tid in cp["shown"]:
                    posv += 1
                    tpv += flagged
            elif ccp["scores"].get(tid, 0) >= threshold:
                amb += flagged
            else:
                fp += flagged
    fp_strict = fp + (0 if exclude_unlabelled else amb)
    return {
        "precision": tp / (tp + fp_strict) if tp + fp_strict else 1.0,
        "recall_shown": tpv / posv if posv else 0.0,
        "recall_all": tp / pos if pos else 0.0,
        "flagged_injected": tp, "flagged_unlabelled": amb, "flagged_other": fp,
    }


def describe(v):
    if not v:
        return "-"
    return f"median {v[len(v) // 2]}, max {max(v)} (of {len(v)} tests that dropped)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("history")
    ap.add_argument("--fedtest", default=os.path.join(HERE, "..", "target", "release", "fedtest"))
    ap.add_argument("--share", type=float, default=0.1, help="share of tests made flaky")
    ap.add_argument("--rates", default="lam2020",
                    help="per-run failure rates: 'lam2020' (measured, see LAM2020_RATES) or LO,HI (log-uniform)")
    ap.add_argument("--retry-share", type=float, default=0.7, help="share of builds that retry failed tests")
    ap.add_argument("--tail", type=int, default=150, help="flake-free builds at the end")
    ap.add_argument("--every", type=int, default=25, help="builds between checkpoints")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--apfd", action="store_true", help="also replay plans and compare APFD")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cycles = list(load_cycles(args.history))
    if args.rates == "lam2020":
        rates, lo, hi, rates_label = LAM2020_RATES, 0.0, 1.0, "measured rates of Lam et al. 2020"
    else:
        lo, hi = map(float, args.rates.split(","))
        rates, rates_label = (lo, hi), f"rates {lo:g}..{hi:g} log-uniform"
    warmup = min(args.warmup, len(cycles) // 4)
    tail = min(args.tail, len(cycles) // 4)
    inj = Injection(cycles, args.share, rates, args.retry_share, tail, args.seed)
    none = Injection(cycles, 0.0, rates, args.retry_share, tail, args.seed)
    t0 = time.time()
    flaky = replay(cycles, args.fedtest, inj, args.every, warmup, args.apfd, "injected")
    clean = replay(cycles, args.fedtest, none, args.every, warmup, args.apfd, "clean")

    at = pr(flaky["checkpoints"], clean["checkpoints"], inj, THRESHOLD, False)
    at_excl = pr(flaky["checkpoints"], clean["checkpoints"], inj, THRESHOLD, True)
    curve = []
    for th in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]:
        r = pr(flaky["checkpoints"], clean["checkpoints"], inj, th, False)
        curve.append({"threshold": th, "precision": round(r["precision"], 3),
                      "recall_shown": round(r["recall_shown"], 3), "recall_all": round(r["recall_all"], 3)})
    buckets = []
    edges = [lo, 0.001, 0.005, 0.01, 0.03, 0.1, hi] if rates is LAM2020_RATES else [lo, 0.03, 0.1, 0.2, hi]
    for a, b in zip(edges, edges[1:]):
        sub = {t for t, p in inj.rate.items() if a < p <= b or (a == lo and p == lo)}
        n = s = 0
        for cp in flaky["checkpoints"]:
            for t in sub & cp["shown"]:
                if t in cp["scores"]:
                    n += 1
                    s += cp["scores"][t] >= THRESHOLD
        buckets.append({"rates": f"{a:g}-{b:g}", "tests": len(sub), "samples": n,
                        "recall_shown": round(s / n, 3) if n else None})
    # Trust coming back: every (score, flake-free runs) of injected tests in the tail.
    late = [(s, ffr) for snap in flaky["tail"] for s, ffr in snap.values() if ffr >= 20]
    over = [x for x in late if x[0] >= THRESHOLD]
    back = {}
    first_tail = flaky["tail"][0] if flaky["tail"] else {}
    for t, (s0, _) in first_tail.items():
        if s0 >= THRESHOLD:
            for snap in flaky["tail"]:
                s, ffr = snap.get(t, (1, 0))
                if s < THRESHOLD:
                    back[t] = ffr
                    break
    unlabelled = sorted({t for cp in clean["checkpoints"] for t, s in cp["scores"].items() if s >= THRESHOLD})
    result = {
        "history": os.path.basename(args.history), "builds": len(cycles),
        "injected_tests": len(inj.rate), "retry_share": args.retry_share, "rates": args.rates,
        "checkpoints": len(flaky["checkpoints"]), "threshold": THRESHOLD,
        "at_threshold": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in at.items()},
        "precision_excluding_unlabelled": round(at_excl["precision"], 3),
        "unlabelled_flagged_on_real_history": unlabelled,
        "pr_curve": curve, "recall_by_rate": buckets,
        "trust_back": {"observations_at_20_flake_free_runs_or_more": len(late), "still_flagged": len(over),
                       "flagged_when_injection_stopped": sum(1 for s, _ in first_tail.values() if s >= THRESHOLD),
                       "flake_free_runs_to_drop_under": sorted(back.values())},
        "errors": flaky["errors"] + clean["errors"], "seconds": round(time.time() - t0, 1),
    }
    if args.apfd:
        a1 = [x for x in flaky["apfd"] if x is not None]
        a0 = [x for x in clean["apfd"] if x is not None]
        result["apfd_real_failures"] = {
            "without_flakiness": round(sum(a0) / len(a0), 4) if a0 else None,
            "with_flakiness": round(sum(a1) / len(a1), 4) if a1 else None,
            "scored_builds": len(a0)}
        if a0 and a1:
            result["apfd_real_failures"]["drop"] = round(sum(a0) / len(a0) - sum(a1) / len(a1), 4)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    r = result
    print(f"{r['history']}: {r['builds']} builds, {r['injected_tests']} tests made flaky "
          f"({rates_label}, retries in {args.retry_share:.0%} of builds), "
          f"{r['checkpoints']} checkpoints, {r['seconds']}s, {r['errors']} fedtest errors")
    a = r["at_threshold"]
    print(f"at the default threshold {THRESHOLD}: precision {a['precision']:.3f} "
          f"(excluding the real history's own flaky-looking tests: {r['precision_excluding_unlabelled']:.3f}), "
          f"recall {a['recall_shown']:.3f} of injected tests whose flakiness showed in their last 20 runs, "
          f"{a['recall_all']:.3f} of all injected tests")
    print(f"real-history tests flagged without any injection: {', '.join(unlabelled) or 'none'}")
    print("threshold  precision  recall(shown)  recall(all)")
    for c in curve:
        print(f"{c['threshold']:9.2f}  {c['precision']:9.3f}  {c['recall_shown']:13.3f}  {c['recall_all']:11.3f}")
    print("recall by failure rate: " + "; ".join(
        f"{b['rates']}: {b['recall_shown']} ({b['tests']} tests)" for b in buckets))
    tb = r["trust_back"]
    print(f"trust back: {tb['flagged_when_injection_stopped']} injected tests flagged when injection stopped; "
          f"under the threshold after {describe(tb['flake_free_runs_to_drop_under'])} flake-free runs; "
          f"{tb['still_flagged']} of {tb['observations_at_20_flake_free_runs_or_more']} observations "
          f"at >= 20 flake-free runs still flagged")
    if args.apfd:
        x = r["apfd_real_failures"]
        print(f"APFD on the real failures ({x['scored_builds']} builds): without flakiness {x['without_flakiness']}, "
              f"with {x['with_flakiness']}, drop {x.get('drop')}")


if __name__ == "__main__":
    main()
