#!/usr/bin/env python3
"""Convert public TCP-in-CI research datasets into the shared JSON-lines history format.

Output format (same as ../shared/data, see its README.md): gzipped JSON lines, one CI build
per line, oldest first:

    {"cycle": "17", "changed_files": null,
     "tests": [{"id": "<project>::t42", "verdict": "pass"|"fail", "duration": 0.03}, ...]}

Input format (RETECS / COLEMAN "features-engineered" tables, CSV with ';' or Parquet), one row
per test execution.  Columns used, as documented by the producers
(jacksonpradolima/tcpci-dataset-utils README and tcpci_dataset_utils/data_filtering.py,
HelgeS/retecs DATA/README):

    Id        unique numeric id of the test execution (row id; the dataset's own row order)
    Name      unique numeric id of the test case        -> id "<project>::t<Name>"
    BuildId   the CI build (factorised Travis/GitLab build id, numbered in start-time order)
    Cycle     RETECS "CI cycle".  In the tcpci/COLEMAN tables it is only a compatibility column
              (factorised month-day-hour of the build start), NOT the build; in the original
              RETECS data (iofrol) it IS the build.
    Duration  test run time (seconds; IOF/ROL: no unit).  deeplearning4j writes 52 values >= 1000
              with a thousands separator ("1,002.934"); the comma is dropped.
    Verdict   1 = failed (failure or error), 0 = passed.  No dataset here has skips.

Conversion rules (these reproduce ../shared/data/{iofrol,dune,druid}.jsonl.gz byte for byte
after decompression -- run `convert.py --verify`):

  * a build = one value of the build key: `Cycle` for RETECS data (iofrol), `BuildId` for the
    tcpci/COLEMAN datasets (what COLEMAN's own ScenarioLoader groups by).  Builds are written
    in ascending numeric order of that key (= chronological; both are numbered by start time).
    The line's "cycle" is that key as a string.
  * tests inside a build keep the dataset's own execution order: rows sorted (stably) by the
    numeric `Id`.  For the CSV files this is the file order; the Parquet re-exports in the
    coleman repo were written partition-by-partition and lost the row order, and `Id` restores
    it (checked on druid: sorting by Id reproduces the shared file, file order does not).
  * a test listed more than once in a build becomes one entry, at its first position; it is a
    failure if any of its rows failed; its duration is the largest of its rows' durations
    (this is what reproduces the shared dune file; the tcpci tool itself de-duplicates by
    keeping the max duration, data_filtering.py l.107/l.285).
  * "changed_files" is null (the datasets do not say which files a build changed).

Sources are read straight out of the bare git mirrors that the `fetch` tool makes
($HISTORY_MIRRORS/<owner>+<name>/repo) with `git cat-file`, at the pinned commit, so the script is
re-runnable and the provenance exact.  Parquet needs pyarrow (in a venv: pip install pyarrow).

Usage:
    convert.py --verify              # rebuild iofrol/dune/druid, compare with ../shared/data
    convert.py [NAME ...]            # convert (default: all NEW datasets) to this folder
    convert.py --list                # show the source table
    convert.py --stats FILE...       # summary line per history file
"""
import argparse, collections, csv, gzip, io, json, os, subprocess, sys

# Bare git mirrors of the source repositories, one per <owner>+<name>/repo (e.g. made with
# `git clone --mirror`); set HISTORY_MIRRORS to where they are.
MIRROR = os.environ.get("HISTORY_MIRRORS", "mirrors")
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(OUT_DIR, "..", "..", "..", "shared", "data")

TCPCI = "jacksonpradolima/tcpci-dataset-utils"
COLEMAN = "jacksonpradolima/coleman"

# name -> (repo, commit, path, build key, id prefix, [alternative (commit, path) copies that
#          must convert to the identical history; checked by --verify])
SOURCES = {
    # ---- already converted in /work/shared/data: used only to validate the rules (--verify)
    "iofrol": (TCPCI, "362dcd3b34518b0eaf65d5f685b9d8da7fd8d771", "data/iofrol/data-filtered.csv",
               "Cycle", "iofrol",
               [("362dcd3b34518b0eaf65d5f685b9d8da7fd8d771", "data/iofrol/features-engineered.csv")]),
    "dune": (COLEMAN, "80160ee1db990ab904dc43e4b722f3b375ca326e",
             "examples/core@dune-common/dune@total/features-engineered.parquet", "BuildId", "dune",
             [("13b223caeb5be233ad3d8191f6498013225ff70b",
               "examples/core@dune-common/dune@total/features-engineered.parquet")]),
    "druid": (COLEMAN, "80160ee1db990ab904dc43e4b722f3b375ca326e",
              "examples/alibaba@druid/features-engineered.parquet", "BuildId", "druid",
              [("13b223caeb5be233ad3d8191f6498013225ff70b",
                "examples/alibaba@druid/features-engineered.parquet")]),
    # ---- new histories
    "deeplearning4j": (TCPCI, "362dcd3b34518b0eaf65d5f685b9d8da7fd8d771",
                       "data/deeplearning4j@deeplearning4j/features-engineered.csv", "BuildId",
                       "deeplearning4j", []),
    "retrofit": (COLEMAN, "80160ee1db990ab904dc43e4b722f3b375ca326e",
                 "examples/square@retrofit/features-engineered.parquet", "BuildId", "retrofit",
                 [("13b223caeb5be233ad3d8191f6498013225ff70b",
                   "examples/square@retrofit/features-engineered.parquet")]),
    # dune-common per-CI-job variants (HCS scenarios of COLEMAN): each is one GitLab CI job's own
    # build history (one compiler/OS configuration); their builds also feed dune@total.
    "dune-debian10-clang7": (COLEMAN, "80160ee1db990ab904dc43e4b722f3b375ca326e",
                             "examples/core@dune-common/dune@debian_10 clang-7-libcpp-17/features-engineered.parquet",
                             "BuildId", "dune", [
                                 ("13b223caeb5be233ad3d8191f6498013225ff70b",
                                  "examples/core@dune-common/dune@debian_10 clang-7-libcpp-17/features-engineered.parquet")]),
    "dune-debian11-gcc10": (COLEMAN, "78fd8e2d7010a4f477c6709b5ce65115dd4e4f4a",
                            "examples/core@dune-common/dune@debian_11 gcc-10-20/features-engineered.csv",
                            "BuildId", "dune", [
                                ("80160ee1db990ab904dc43e4b722f3b375ca326e",
                                 "examples/core@dune-common/dune@debian_11 gcc-10-20/features-engineered.parquet"),
                                ("13b223caeb5be233ad3d8191f6498013225ff70b",
                                 "examples/core@dune-common/dune@debian_11 gcc-10-20/features-engineered.parquet")]),
    "dune-ubuntu2004-clang10": (COLEMAN, "78fd8e2d7010a4f477c6709b5ce65115dd4e4f4a",
                                "examples/core@dune-common/dune@ubuntu_20_04 clang-10-20/features-engineered.csv",
                                "BuildId", "dune", [
                                    ("80160ee1db990ab904dc43e4b722f3b375ca326e",
                                     "examples/core@dune-common/dune@ubuntu_20_04 clang-10-20/features-engineered.parquet"),
                                    ("13b223caeb5be233ad3d8191f6498013225ff70b",
                                     "examples/core@dune-common/dune@ubuntu_20_04 clang-10-20/features-engineered.parquet")]),
}
SHARED_NAMES = ("iofrol", "dune", "druid")


def git_dir(repo):
    return os.path.join(MIRROR, repo.replace("/", "+"), "repo")


def read_blob(repo, commit, path):
    gd = git_dir(repo)
    return subprocess.run(["git", "--git-dir", gd, "cat-file", "blob", f"{commit}:{path}"],
                          check=True, capture_output=True).stdout


def read_rows(repo, commit, path):
    """Rows as dicts of strings/numbers, in the file's own row order."""
    data = read_blob(repo, commit, path)
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq
        d = pq.read_table(io.BytesIO(data)).to_pydict()
        cols = list(d)
        return [dict(zip(cols, vals)) for vals in zip(*(d[c] for c in cols))]
    text = data.decode("utf-8")
    if text.startswith("version https://git-lfs"):
        raise SystemExit(f"{repo}@{commit}:{path} is a Git LFS pointer, not data")
    return [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(io.StringIO(text), delimiter=";")]


def convert_rows(rows, key, prefix):
    """Apply the conversion rules (module docstring); returns a list of build dicts, oldest first."""
    rows = sorted(rows, key=lambda r: int(r["Id"]))           # dataset's own order (stable)
    builds = {}
    for r in rows:
        b = builds.setdefault(int(r[key]), {})
        tid = f"{prefix}::t{int(r['Name'])}"
        verdict = "fail" if int(r["Verdict"]) == 1 else "pass"
        dur = r["Duration"]
        if isinstance(dur, str):   # deeplearning4j: 52 surefire times with thousands separators, "1,002.934"
            dur = dur.replace(",", "")
        dur = float(dur) if dur not in (None, "") else 0.0
        t = b.get(tid)
        if t is None:
            b[tid] = {"id": tid, "verdict": verdict, "duration": dur}
        else:
            if verdict == "fail":
                t["verdict"] = "fail"
            t["duration"] = max(t["duration"], dur)
    return [{"cycle": str(k), "changed_files": None, "tests": list(builds[k].values())}
            for k in sorted(builds)]


def lines(builds):
    return [json.dumps(b) + "\n" for b in builds]


def write(builds, path):
    with gzip.open(path, "wt") as f:
        f.writelines(lines(builds))


def convert(name):
    repo, commit, path, key, prefix, _alts = SOURCES[name]
    return convert_rows(read_rows(repo, commit, path), key, prefix)


def stats(builds):
    nb = len(builds)
    fb = sum(1 for b in builds if any(t["verdict"] == "fail" for t in b["tests"]))
    distinct = len({t["id"] for b in builds for t in b["tests"]})
    ntests = sum(len(b["tests"]) for b in builds)
    fails = sum(1 for b in builds for t in b["tests"] if t["verdict"] == "fail")
    return dict(builds=nb, failing_builds=fb, distinct_tests=distinct,
                mean_tests_per_build=round(ntests / nb, 1) if nb else 0, test_runs=ntests,
                failing_test_runs=fails)


def load_history(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(l) for l in f if l.strip()]


def verify():
    ok = True
    for name in SHARED_NAMES:
        mine = lines(convert(name))
        with gzip.open(os.path.join(SHARED, f"{name}.jsonl.gz"), "rt") as f:
            theirs = f.readlines()
        same = mine == theirs
        ok &= same
        print(f"{name}: {len(mine)} builds, identical to shared: {same}")
    for name, (repo, commit, path, key, prefix, alts) in SOURCES.items():
        if not alts:
            continue
        ref = convert(name)
        for c, p in alts:
            try:
                alt = convert_rows(read_rows(repo, c, p), key, prefix)
            except subprocess.CalledProcessError:
                print(f"{name}: alternative copy {c[:8]}:{p} not readable (blob missing)")
                continue
            same = alt == ref
            ok &= same
            print(f"{name}: alternative copy {c[:8]}:{p} converts identically: {same}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--stats", nargs="+", metavar="FILE")
    ap.add_argument("--out", default=OUT_DIR)
    a = ap.parse_args()
    if a.list:
        for n, (repo, commit, path, key, prefix, alts) in SOURCES.items():
            print(f"{n}\t{repo}@{commit}:{path}\tkey={key}\tprefix={prefix}")
        return
    if a.stats:
        for p in a.stats:
            print(os.path.basename(p), json.dumps(stats(load_history(p))))
        return
    if a.verify:
        sys.exit(0 if verify() else 1)
    names = a.names or [n for n in SOURCES if n not in SHARED_NAMES]
    for n in names:
        builds = convert(n)
        out = os.path.join(a.out, f"{n}.jsonl.gz")
        write(builds, out)
        print(n, "->", out, json.dumps(stats(builds)))


if __name__ == "__main__":
    main()
