#!/usr/bin/env python3
"""Plan time with the symbol-level change analysis (issue 15), cold (no parse cache) and warm.

usage: bench/changes_timing.py NAME HISTORY.jsonl.gz REPO.bundle FEDTEST

Clones the bundle into a temp dir, checks out the newest build that changes a .py file, records
the 30 builds before it (outside the checkout: no analysis) and times `plan --budget 30%` five
times each way: without changed files (no analysis) and with them, with symbols.json removed
(cold) and kept (warm). Prints medians in ms, as JSON.
"""
import gzip, json, os, shutil, subprocess, sys, tempfile, time
from xml.sax.saxutils import quoteattr
name, hist, bundle, binary = sys.argv[1:5]
rows = [json.loads(l) for l in gzip.open(hist, "rt")]
work = tempfile.mkdtemp(prefix=f"timing-{name}-")
repo = os.path.join(work, "repo")
subprocess.run(["git", "clone", "-q", bundle, repo], check=True, capture_output=True)
# The newest build whose change touches Python.
r = next(r for r in reversed(rows) if r["changed_files"] and any(f.endswith(".py") for f in r["changed_files"]))
subprocess.run(["git", "-C", repo, "checkout", "-q", r["cycle"]], check=True)
lines = 0
for dp, dn, fn in os.walk(repo):
    if "/.git" in dp:
        continue
    for f in fn:
        if f.endswith(".py"):
            lines += sum(1 for _ in open(os.path.join(dp, f), errors="replace"))
data = os.path.join(work, "data")
os.makedirs(data)
cand = os.path.join(work, "c.txt"); open(cand, "w").write("\n".join(t["id"] for t in r["tests"]) + "\n")
ch = os.path.join(work, "ch.txt"); open(ch, "w").write("\n".join(r["changed_files"]) + "\n")
# A history to plan from: the previous builds' reports recorded (without analysis: outside the checkout).
def run(args, cwd):
    t0 = time.perf_counter(); p = subprocess.run([binary, "--data-dir", data, *args], cwd=cwd, capture_output=True, text=True); return time.perf_counter() - t0, p
for i, prev in enumerate(rows[max(0, rows.index(r) - 30):rows.index(r)]):
    j = os.path.join(work, "j.xml")
    open(j, "w").write("<testsuite>" + "".join(
        f'<testcase classname={quoteattr(t["id"].split("::")[0])} name={quoteattr(t["id"].split("::", 1)[1])} time="{t["duration"]}">' + ("<failure/>" if t["verdict"] == "fail" else "") + "</testcase>"
        for t in prev["tests"] if "::" in t["id"] and t["id"].split("::", 1)[1]) + "</testsuite>")
    _, p = run(["record", "--junit", j, "--build", f"h{i}"], work)
    assert p.returncode == 0, p.stderr
plan = ["plan", "--tests", cand, "--changed-files", ch, "--budget", "30%", "--format", "list"]
off = ["plan", "--tests", cand, "--budget", "30%", "--format", "list"]
res = {}
for label, args in [("no changed files (no analysis)", off), ("analysis", plan)]:
    ts_cold, ts_warm = [], []
    for k in range(5):
        if os.path.exists(os.path.join(data, "symbols.json")):
            os.remove(os.path.join(data, "symbols.json"))
        t, p = run(args, repo); ts_cold.append(t)
        t, p = run(args, repo); ts_warm.append(t)
    res[label] = (sorted(ts_cold)[2] * 1000, sorted(ts_warm)[2] * 1000)
_, p = run(plan + ["--explain"], repo)
note = next((l for l in p.stderr.splitlines() if "symbol-level" in l), "")
print(json.dumps({"repo": name, "python_lines": lines, "tests": len(r["tests"]), "build": r["cycle"],
                  "median_ms_cold_warm": res, "note": note[:300]}))
shutil.rmtree(work)
