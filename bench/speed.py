#!/usr/bin/env python3
"""Speed and size benchmark of the fedtest binary (the targets in the README).

  python3 bench/speed.py [--fedtest target/release/fedtest] [--builds 1000] [--tests 10000]
                         [--compare OTHER_BINARY]

Measures, each with the real binary on a real SQLite store in a temp dir:
  1. `record` of one 100,000-testcase JUnit file into a fresh store: wall time and peak RSS;
  2. a history of --builds builds x --tests tests recorded one build at a time (as CI would),
     then `plan` over all --tests candidates: median wall time of 15 runs;
  3. the store's size on disk after that history (default retention);
  4. `fedtest --version`: median wall time of 50 runs.
With --compare, step 2 records every build with both binaries, alternately, into two stores,
and plans with both: what one change costs `record` and `plan`, measured back to back so the
machine's load falls on both alike (e.g. the backtest in `record`, issue 10: target +30 ms).
Failures are drawn so that a small set of tests fails often and others rarely, and 2% of the
tests are renamed every 100 builds, so the store sees churn like a real suite.
"""
import argparse, os, random, resource, shutil, statistics, subprocess, sys, tempfile, time


def junit(path, tests, fail, dur):
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="bench" tests="%d">\n' % len(tests))
        for t in tests:
            cls, _, name = t.rpartition("::")
            if t in fail:
                f.write('<testcase classname="%s" name="%s" time="%.3f"><failure message="x">boom</failure></testcase>\n' % (cls, name, dur[t]))
            else:
                f.write('<testcase classname="%s" name="%s" time="%.3f"/>\n' % (cls, name, dur[t]))
        f.write("</testsuite></testsuites>\n")


def run(cmd, **kw):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[:4]} failed ({p.returncode}): {p.stderr[-2000:]}")
    return dt, p


def peak_rss_mib(cmd):
    """Peak RSS of one child process, via wait4's rusage (no /usr/bin/time needed)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.perf_counter()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[:4]} failed: {p.stderr.read().decode()[-2000:]}")
    return dt, ru.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fedtest", default="target/release/fedtest")
    ap.add_argument("--builds", type=int, default=1000)
    ap.add_argument("--tests", type=int, default=10000)
    ap.add_argument("--big", type=int, default=100000, help="testcases in the single large report")
    ap.add_argument("--compare", help="a second binary, measured alongside in step 2")
    ap.add_argument("--skip-big", action="store_true", help="leave out step 1")
    args = ap.parse_args()
    fed = os.path.abspath(args.fedtest)
    other = os.path.abspath(args.compare) if args.compare else None
    rng = random.Random(7)
    work = tempfile.mkdtemp(prefix="fedtest-speed-")
    results = {}
    try:
        # 1. one large report
        big = [f"pkg.mod{i % 500}.Test{i % 37}::test_{i}" for i in range(args.big)]
        dur = {t: rng.expovariate(10) for t in big}
        fail = set(rng.sample(big, args.big // 100))  # drawn either way: step 2 sees the same history
        path = os.path.join(work, "big.xml")
        junit(path, big, fail, dur)
        if not args.skip_big:
            secs, rss = peak_rss_mib([fed, "--data-dir", os.path.join(work, "big"), "record", "--junit", path, "--build", "b1"])
            results["record_100k_seconds"] = round(secs, 3)
            results["record_100k_peak_rss_mib"] = round(rss, 1)
            # a second record of the same size into the now non-empty store
            secs, rss = peak_rss_mib([fed, "--data-dir", os.path.join(work, "big"), "record", "--junit", path, "--build", "b2"])
            results["record_100k_second_build_seconds"] = round(secs, 3)
            results["record_100k_second_build_peak_rss_mib"] = round(rss, 1)

        # 2. a long history, recorded build by build
        data = os.path.join(work, "hist")
        tests = [f"app.module{i % 200}.Suite{i % 13}::test_case_{i}" for i in range(args.tests)]
        dur = {t: rng.expovariate(5) for t in tests}
        fragile = rng.sample(tests, max(1, args.tests // 200))
        record_times, other_times = [], []
        other_data = os.path.join(work, "hist-other")
        for b in range(args.builds):
            if b and b % 100 == 0:  # churn: rename 2% of the tests
                for i in rng.sample(range(len(tests)), len(tests) // 50):
                    new = tests[i] + f"_v{b}"
                    dur[new] = dur.pop(tests[i], 0.1)
                    tests[i] = new
            fail = {t for t in fragile if rng.random() < 0.2} | {t for t in rng.sample(tests, 3) if rng.random() < 0.5}
            path = os.path.join(work, "build.xml")
            junit(path, tests, fail, dur)
            # Alternate which binary goes first, so neither always meets a warm page cache.
            pair = [(fed, data, record_times)] + ([(other, other_data, other_times)] if other else [])
            for binary, d, times in pair if b % 2 == 0 else pair[::-1]:
                dt, _ = run([binary, "--data-dir", d, "record", "--junit", path, "--build", f"build-{b}"])
                times.append(dt)
            if b % 100 == 99:
                print(f"  recorded {b + 1} builds (median record {statistics.median(record_times):.3f}s)", file=sys.stderr)
        results["history_builds"] = args.builds
        results["history_tests"] = args.tests
        results["record_10k_median_seconds"] = round(statistics.median(record_times), 3)
        if other:
            results["compare_record_10k_median_seconds"] = round(statistics.median(other_times), 3)
            # The paired difference: build by build, the same report into the same history.
            results["record_10k_median_difference_ms"] = round(
                1000 * statistics.median(a - b for a, b in zip(record_times, other_times)), 1)
        cand = os.path.join(work, "candidates.txt")
        with open(cand, "w") as f:
            f.write("\n".join(tests) + "\n")
        plan_times = [run([fed, "--data-dir", data, "plan", "--tests", cand, "--budget", "30%", "--format", "list"])[0] for _ in range(15)]
        results["plan_10k_median_seconds"] = round(statistics.median(plan_times), 4)
        if other:
            other_plans = [run([other, "--data-dir", other_data, "plan", "--tests", cand, "--budget", "30%", "--format",
                                "list"])[0] for _ in range(15)]
            results["compare_plan_10k_median_seconds"] = round(statistics.median(other_plans), 4)
        size = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
        results["store_mib"] = round(size / 2**20, 1)

        # 4. startup
        v = [run([fed, "--version"])[0] for _ in range(50)]
        results["version_median_ms"] = round(1000 * statistics.median(v), 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    targets = {
        "record_100k_seconds": ("<", 1.0),
        "record_100k_peak_rss_mib": ("<", 150),
        "plan_10k_median_seconds": ("<", 0.25),
        "version_median_ms": ("<", 10),
        "store_mib": ("<", 64),
        "record_10k_median_difference_ms": ("<", 30),
    }
    for k, v in results.items():
        t = targets.get(k)
        verdict = "" if not t else ("  ok (target < %s)" % t[1] if v < t[1] else "  OVER TARGET (< %s)" % t[1])
        print(f"{k:42} {v}{verdict}")


if __name__ == "__main__":
    main()
