#!/usr/bin/env python3
"""Benchmark of `fedtest import github` against a loopback GitHub (the target in the README).

  python3 bench/import.py [--fedtest target/release/fedtest] [--runs 200] [--tests 5000]

Starts an HTTP/1.1 server on 127.0.0.1 (port 0) shaped like GitHub's REST API: the workflow's
runs (100 a page, `Link` headers), each run's artifacts, the artifact zip behind a 302 to a
blob URL, and the head commit's changed files. Every run has one artifact, a zip of one
generated JUnit file of --tests testcases (a few failures and retry flakes a run, so the model
has something to learn). Then:

  1. `fedtest import github` into a fresh data dir: wall time, CPU time (user + system, which
     says more than wall time on a machine shared with other work), peak RSS, requests, bytes;
  2. the same command again: wall time, and the requests and bytes it cost (only the run
     listing may be transferred: no artifact, zip or commit request).

Exits non-zero when the first import takes 30 s or more, or the second one transfers anything
but the listing.
"""
import argparse, io, json, os, random, re, resource, shutil, subprocess, sys, tempfile, threading, time, zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "ghp_bench"
REPO = "/repos/acme/widgets"


def junit(tests, fail, flaky, rng):
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="bench" tests="%d">\n' % len(tests)]
    for t in tests:
        cls, _, name = t.rpartition("::")
        time_ = "%.3f" % rng.expovariate(20)
        if t in fail:
            out.append('<testcase classname="%s" name="%s" time="%s"><failure message="assert">boom</failure></testcase>\n' % (cls, name, time_))
        elif t in flaky:
            out.append('<testcase classname="%s" name="%s" time="%s"><flakyFailure message="x" type="x"/></testcase>\n' % (cls, name, time_))
        else:
            out.append('<testcase classname="%s" name="%s" time="%s"/>\n' % (cls, name, time_))
    out.append("</testsuite></testsuites>\n")
    return "".join(out)


class Data:
    def __init__(self, runs, ntests, seed=7):
        rng = random.Random(seed)
        tests = [f"pkg.mod{i % 50}.Test{i % 20}::test_case_{i}" for i in range(ntests)]
        fragile = rng.sample(tests, max(1, ntests // 200))
        self.runs = []  # newest first, as GitHub lists them
        self.zips = {}
        self.files = {}
        t0 = 1_772_359_200  # 2026-03-01T10:00:00Z
        for k in range(runs):
            run_id = 5000 + k
            fail = {t for t in fragile if rng.random() < 0.15} | {t for t in rng.sample(tests, 3) if rng.random() < 0.3}
            flaky = {t for t in rng.sample(tests, 2)} - fail
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("reports/junit.xml", junit(tests, fail, flaky, rng))
            self.zips[run_id] = buf.getvalue()
            sha = "%040x" % (0xBEEF0000 + k)
            self.files[sha] = [f"src/pkg/mod{rng.randrange(50)}.py" for _ in range(3)]
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 600 * k))
            # The fields the run filter reads (issue 18): a push of the repository itself.
            own = {"id": 1, "full_name": "acme/widgets"}
            self.runs.append({"id": run_id, "run_attempt": 1, "status": "completed", "conclusion": "success",
                              "event": "push", "repository": own, "head_repository": own,
                              "head_sha": sha, "head_branch": "main", "run_started_at": ts, "created_at": ts})
        self.runs.reverse()
        self.lock = threading.Lock()
        self.reset_counts()

    def reset_counts(self):
        with self.lock:
            self.requests = {}
            self.bytes = {}

    def count(self, kind, n):
        with self.lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            self.bytes[kind] = self.bytes.get(kind, 0) + n


def make_handler(data):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, kind, status, body=b"", ctype="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-ratelimit-remaining", "4999")
            self.send_header("x-ratelimit-reset", str(int(time.time()) + 3600))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            data.count(kind, len(body))

        def do_GET(self):
            u = urlsplit(self.path)
            q = parse_qs(u.query)
            path = u.path
            if path.startswith("/blob/"):
                run_id = int(path.rsplit("/", 1)[1])
                return self.send("blob", 200, data.zips[run_id], "application/zip")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.send("denied", 401, b'{"message":"Bad credentials"}')
            host = f"http://{self.headers['Host']}"
            if path == f"{REPO}/actions/workflows/ci.yml/runs":
                per = min(int(q.get("per_page", ["30"])[0]), 100)
                page = int(q.get("page", ["1"])[0])
                runs = data.runs[(page - 1) * per: page * per]
                pages = (len(data.runs) + per - 1) // per
                headers = []
                if page < pages:
                    headers.append(("Link", f'<{host}{path}?status=completed&per_page={per}&page={page + 1}>; rel="next", '
                                            f'<{host}{path}?status=completed&per_page={per}&page={pages}>; rel="last"'))
                body = json.dumps({"total_count": len(data.runs), "workflow_runs": runs}).encode()
                return self.send("runs", 200, body, headers=headers)
            m = re.fullmatch(REPO + r"/actions/runs/(\d+)/artifacts", path)
            if m:
                run_id = int(m.group(1))
                art = {"id": run_id, "name": "junit-results", "size_in_bytes": len(data.zips[run_id]), "expired": False,
                       "archive_download_url": f"{host}{REPO}/actions/artifacts/{run_id}/zip"}
                return self.send("artifacts", 200, json.dumps({"total_count": 1, "artifacts": [art]}).encode())
            m = re.fullmatch(REPO + r"/actions/artifacts/(\d+)/zip", path)
            if m:
                return self.send("zip", 302, headers=[("Location", f"{host}/blob/{m.group(1)}?sig=x")])
            m = re.fullmatch(REPO + r"/commits/([0-9a-f]{40})", path)
            if m:
                files = [{"filename": f} for f in data.files[m.group(1)]]
                return self.send("commits", 200, json.dumps({"sha": m.group(1), "files": files}).encode())
            return self.send("other", 404, b'{"message":"Not Found"}')

    return Handler


def run_import(fed, data_dir, url, runs, extra):
    cmd = [fed, "--data-dir", data_dir, "import", "github", "--repo", "acme/widgets", "--workflow", "ci.yml",
           "--api-url", url, "--limit", str(runs)] + extra
    env = dict(os.environ, GITHUB_TOKEN=TOKEN)
    for k in ("GITHUB_ACTIONS", "GITLAB_CI", "FEDTEST_SERVER", "GITHUB_REPOSITORY"):
        env.pop(k, None)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"import failed ({os.waitstatus_to_exitcode(status)}): {err[-3000:]}")
    return dt, ru.ru_maxrss / 1024.0, err, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fedtest", default="target/release/fedtest")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--tests", type=int, default=5000)
    ap.add_argument("--extra", default="", help="more arguments for `fedtest import github`, e.g. '--jobs 2'")
    args = ap.parse_args()
    extra = args.extra.split()
    fed = os.path.abspath(args.fedtest)
    t0 = time.perf_counter()
    data = Data(args.runs, args.tests)
    zip_bytes = sum(len(z) for z in data.zips.values())
    print(f"generated {args.runs} runs x {args.tests} tests ({zip_bytes / 2**20:.1f} MiB of zips) in "
          f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(data))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    work = tempfile.mkdtemp(prefix="fedtest-import-bench-")
    results = {}
    try:
        data_dir = os.path.join(work, "data")
        dt, rss, err, cpu = run_import(fed, data_dir, url, args.runs, extra)
        results["first_import_seconds"] = round(dt, 2)
        results["first_import_cpu_seconds"] = round(cpu, 2)
        results["first_import_peak_rss_mib"] = round(rss, 1)
        results["first_import_requests"] = dict(sorted(data.requests.items()))
        results["first_import_bytes"] = sum(data.bytes.values())
        summary = [l for l in err.splitlines() if "imported " in l]
        results["first_import_summary"] = summary[-1] if summary else err[-500:]
        data.reset_counts()
        dt, rss, err, cpu = run_import(fed, data_dir, url, args.runs, extra)
        results["second_import_seconds"] = round(dt, 2)
        results["second_import_requests"] = dict(sorted(data.requests.items()))
        results["second_import_bytes"] = sum(data.bytes.values())
        summary = [l for l in err.splitlines() if "imported " in l]
        results["second_import_summary"] = summary[-1] if summary else err[-500:]
        size = sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir))
        results["store_mib"] = round(size / 2**20, 1)
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    ok = True
    if results["first_import_seconds"] >= 30:
        print("OVER TARGET: the first import took 30 s or more", file=sys.stderr)
        ok = False
    if set(results["second_import_requests"]) - {"runs"}:
        print("OVER TARGET: the second import transferred more than the run listing", file=sys.stderr)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
