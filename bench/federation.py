#!/usr/bin/env python3
"""Federation quality: cold start of a late-joining repository, and poisoning (issue 3, items 1-2).

Every repository is a real history from ../shared/data replayed through the release binary
exactly as ../shared/bench/replay.py does (plan before, record after, scores only on builds with
a failure, the same metric functions, imported from replay.py), each with its own data dir. With
federation, `fedtest sync --server URL` (token in FEDTEST_TOKEN) runs after every `record`,
against one real `fedtest serve` on 127.0.0.1 (port 0, tokens via --tokens-file).

  cold start   for each late joiner L in iofrol, dune, druid: the other three histories (of the
               four, jinja included) train first, round-robin, for at most --warmup builds each;
               then L replays its first --late-builds builds, syncing. Compared with L replayed
               alone with no server: mean APFD over L's first 50 scored builds, and over the rest.
               The embedded prior was fitted on all four histories, L included; with
               --prior-dir every process of L's experiment (server, the others, L with and
               without federation) uses instead a prior fitted without L (bench/fit_prior.py),
               so that neither arm has seen L's data before L joins.
  poisoning    four clients (iofrol, dune, druid, jinja, --poison-builds builds each,
               round-robin). The attacker replays dune locally (`record`, never `sync`) and on
               every round pulls GET /v1/model?schema=N (the binary's schema), takes the delta `fedtest sync --dry-run`
               would send against it, and POSTs it sign-flipped or scaled 100x (claiming the
               maximum sample count) to /v1/updates. Honest clients' APFD with the attacker vs
               with dune as an honest client; default rule (trimmed mean) and --rule median.
  long attack  (issue 11) the same four tokens, but the attacker (one token in four) floods:
               from its own thread, as fast as the server accepts (its --rate), it POSTs the
               worst case it is allowed — a delta of norm 0.99 × the advertised max_norm, always
               in the same direction (against the prior: it drags every weight toward the
               opposite ranking), claiming 1,000 samples, based on the current version — for at
               least --long-versions versions (it goes on alone after the honest replays end).
               Reported: versions made during the attack, how far the global model moved
               (from the prior, and from the no-attack run's final model; the largest distance
               from the prior over all versions, read from the server's database), and the
               honest clients' mean APFD against the same run with dune honest. Run against
               --fedtest and, with --fedtest-before, an older binary too.

Usage: python3 bench/federation.py [--jobs 3] [--only cold|poison|long] [--prior-dir DIR] [--json out.json]
"""
import argparse, concurrent.futures as cf, json, math, os, secrets, shutil, sqlite3, subprocess, sys, tempfile
import threading, time
import urllib.request, urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "bench"))
import replay as R  # noqa: E402  (metrics, JUnit writer and the Fedtest CLI driver)

DATA = os.path.join(SHARED, "data")
HISTORIES = ["iofrol", "dune", "druid", "jinja"]


_SCHEMAS = {}


def schema_of(binary):
    """The feature schema a fedtest binary speaks (`fedtest model --json` of an empty data dir):
    what GET /v1/model?schema=N must ask and an update must claim."""
    if binary not in _SCHEMAS:
        d = tempfile.mkdtemp(prefix="fedtest-schema-")
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
            out = subprocess.run([binary, "--data-dir", d, "model", "--json"], capture_output=True, text=True,
                                 env=env, check=True).stdout
            _SCHEMAS[binary] = int(json.loads(out)["schema"])
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return _SCHEMAS[binary]


def load(name, cap):
    out = []
    for c in R.load_cycles(os.path.join(DATA, f"{name}.jsonl.gz")):
        if len(out) >= cap:
            break
        out.append(c)
    return out


# ---------------------------------------------------------------- server
class Server:
    def __init__(self, binary, tmp, tokens, extra=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="srv-", dir=tmp)
        tf = os.path.join(self.dir, "tokens.txt")
        with open(tf, "w") as f:
            f.write("\n".join(tokens) + "\n")
        pf = os.path.join(self.dir, "port")
        self.db = os.path.join(self.dir, "server.sqlite")
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.bin = binary
        self.p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--port-file", pf, "--db", self.db,
                                   "--tokens-file", tf, *extra], stdout=self.log, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, **(env or {})))
        for _ in range(200):
            if os.path.exists(pf) and open(pf).read().strip():
                break
            if self.p.poll() is not None:
                raise RuntimeError(f"server exited: {open(self.log.name).read()}")
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not start")
        self.url = "http://" + open(pf).read().strip()

    def metrics(self):
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("fedtest_updates_") or line.startswith("fedtest_model_version") \
                    or line.startswith("fedtest_aggregations"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


# ---------------------------------------------------------------- a repository
class Repo:
    """One repository: its own data dir, replayed build by build; optionally syncing."""

    def __init__(self, binary, tmp, name, cycles, server=None, token=None, prior=None):
        self.name, self.cycles, self.i = name, cycles, 0
        self.dir = tempfile.mkdtemp(prefix=f"{name}-", dir=tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
        if prior:
            env["FEDTEST_PRIOR"] = prior
        self.ft = R.Fedtest(binary, self.dir, name=name, env=None)
        self.ft.env = env  # record must not auto-sync: the sync below is explicit
        self.ft.timing["sync"] = []
        self.ft.work = tempfile.mkdtemp(prefix=f"work-{name}-", dir=tmp)
        self.server, self.sync_env = server, dict(env, FEDTEST_TOKEN=token or "")
        self.apfd, self.rt33 = [], []
        self.choices = {}
        self.sync_fail = 0

    def done(self):
        return self.i >= len(self.cycles)

    def step(self):
        """One build, scored exactly as replay.replay does (start=0)."""
        cyc = self.cycles[self.i]
        self.i += 1
        runnable = [t for t in cyc["tests"] if t["verdict"] in ("pass", "fail")]
        ids = [t["id"] for t in runnable]
        failing = {t["id"] for t in runnable if t["verdict"] == "fail"}
        dur = {t["id"]: float(t.get("duration") or 0.0) for t in runnable}
        if failing and len(ids) > 1:
            order = self.ft.plan(cyc, ids)
            self.apfd.append(R.apfd(order, failing))
            self.rt33.append(R.recall_at_time(order, failing, dur, 0.33))
        elif ids:
            self.ft.plan(cyc, ids)
        self.ft.record(cyc)
        if self.server:
            self.sync()

    def sync(self):
        t0 = time.perf_counter()
        p = subprocess.run([self.ft.bin, "--data-dir", self.dir, "sync", "--server", self.server.url],
                           capture_output=True, text=True, env=self.sync_env, timeout=60)
        self.ft.timing["sync"].append(time.perf_counter() - t0)
        err = p.stderr
        if p.returncode != 0 or "sync failed" in err:
            self.sync_fail += 1
            if self.sync_fail <= 3:
                sys.stderr.write(f"[{self.name}] sync: rc {p.returncode} {err[-400:]}\n")
        for key, label in (("using the global model", "global"), ("using a blend", "blend"),
                           ("using the local model", "local")):
            if key in err:
                self.choices[label] = self.choices.get(label, 0) + 1


class Attacker:
    """Replays a real history locally (record only) and, on every round, POSTs the delta that
    `fedtest sync --dry-run` would send against the current global model, transformed."""

    def __init__(self, binary, tmp, name, cycles, server, token, mode, template_dirs):
        self.repo = Repo(binary, tmp, name, cycles)  # no server: never syncs itself
        self.server, self.token, self.mode = server, token, mode
        self.template_dirs = template_dirs
        self.sent, self.codes = 0, {}

    def done(self):
        return self.repo.done()

    def _req(self, method, path, body=None):
        req = urllib.request.Request(self.server.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def step(self):
        cyc = self.repo.cycles[self.repo.i]
        self.repo.i += 1
        self.repo.ft.record(cyc)
        template = next((os.path.join(d, "model.global.json") for d in self.template_dirs
                         if os.path.exists(os.path.join(d, "model.global.json"))), None)
        if template is None:
            return
        st, g = self._req("GET", f"/v1/model?schema={schema_of(self.server.bin)}")
        if st != 200:
            self.codes[f"get {st}"] = self.codes.get(f"get {st}", 0) + 1
            return
        # Make the attacker's cached global model the current one, so the dry run's delta is
        # exactly `local - global` against version g["version"].
        m = json.load(open(template))
        m["weights"], m["intercept"] = g["vector"][:-1], g["vector"][-1]
        json.dump(m, open(os.path.join(self.repo.dir, "model.global.json"), "w"))
        json.dump({"version": g["version"], "schema": g["schema"]},
                  open(os.path.join(self.repo.dir, "federation.json"), "w"))
        p = subprocess.run([self.repo.ft.bin, "--data-dir", self.repo.dir, "sync", "--dry-run"],
                           capture_output=True, text=True, env=self.repo.ft.env, timeout=60)
        line = p.stdout.strip()
        if not line:
            self.codes["nothing to send"] = self.codes.get("nothing to send", 0) + 1
            return
        u = json.loads(line)
        assert u["base_version"] == g["version"], (u["base_version"], g["version"])
        f = -1.0 if self.mode == "flip" else 100.0
        u["delta"] = [f * x for x in u["delta"]]
        u["samples"] = 1000  # claims the cap
        u["id"] = secrets.token_hex(16)
        st, ans = self._req("POST", "/v1/updates", json.dumps(u).encode())
        key = str(st) + ("" if st < 300 else f" {ans.get('reason') if isinstance(ans, dict) else ''}")
        self.codes[key] = self.codes.get(key, 0) + 1
        self.sent += 1


class Flooder:
    """The long attack's attacker: its own thread, POSTing the worst-case update it is allowed
    as fast as the server accepts it, until told to stop."""

    def __init__(self, server, token):
        self.server, self.token = server, token
        self.codes, self.stop_flag = {}, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _req(self, method, path, body=None):
        req = urllib.request.Request(self.server.url + path, data=body, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), e.headers
        except (urllib.error.URLError, OSError, ValueError):
            return 0, None, {}

    def run(self):
        direction = None
        schema = schema_of(self.server.bin)
        while not self.stop_flag.is_set():
            st, g, _ = self._req("GET", f"/v1/model?schema={schema}")
            if st != 200:
                time.sleep(0.05)
                continue
            if direction is None:
                # Against the prior (version 1's vector, what the server served first): every
                # weight dragged toward the opposite ranking.
                n = math.sqrt(sum(x * x for x in g["vector"])) or 1.0
                direction = [-x / n for x in g["vector"]]
            scale = 0.99 * g["max_norm"]
            u = {"id": secrets.token_hex(16), "schema": schema, "base_version": g["version"],
                 "delta": [scale * d for d in direction], "samples": 1000}
            st, ans, headers = self._req("POST", "/v1/updates", json.dumps(u).encode())
            key = str(st) + ("" if st < 300 else f" {ans.get('reason') if isinstance(ans, dict) else ''}")
            self.codes[key] = self.codes.get(key, 0) + 1
            if st == 429:
                time.sleep(float(headers.get("Retry-After", "1") or 1) if headers else 1.0)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(30)


def versions_from_prior(db):
    """Per version of the server's SQLite database (of the schema it serves, the newest): its
    distance from the schema's first version (the prior)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = c.execute("SELECT version, vector FROM versions WHERE schema = (SELECT MAX(schema) FROM versions) "
                     "ORDER BY version").fetchall()
    c.close()
    prior = json.loads(rows[0][1])
    out = []
    for v, vec in rows:
        vec = json.loads(vec)
        out.append((v, math.sqrt(sum((a - b) ** 2 for a, b in zip(vec, prior))), vec))
    return out


def long_attack(args, binary, label, attack):
    tmp = tempfile.mkdtemp(prefix=f"fed-long-{label}-{'attack' if attack else 'none'}-", dir=args.tmp)
    t0 = time.time()
    toks = {h: token() for h in HISTORIES}
    srv = Server(binary, tmp, list(toks.values()), list(args.serve_long))
    res = {"binary": label, "attack": attack}
    try:
        honest = [Repo(binary, tmp, h, load(h, args.long_builds), srv, toks[h])
                  for h in HISTORIES if h != args.attacker]
        clients = list(honest)
        flooder = None
        if attack:
            flooder = Flooder(srv, toks[args.attacker])
            flooder.start()
        else:
            clients.append(Repo(binary, tmp, args.attacker, load(args.attacker, args.long_builds), srv,
                                toks[args.attacker]))
        start_version = srv.metrics().get("fedtest_model_version", 1)
        round_robin(clients)
        # The attacker goes on alone until enough versions were made under attack.
        deadline = time.time() + args.long_alone_secs
        while attack and time.time() < deadline:
            if srv.metrics().get("fedtest_model_version", 0) - start_version >= args.long_versions:
                break
            time.sleep(1)
        if flooder:
            flooder.stop()
            res["attacker"] = flooder.codes
        res["honest"] = {h.name: h.apfd for h in honest}
        res["sync_fail"] = sum(h.sync_fail for h in honest)
        res["metrics"] = srv.metrics()
        res["versions"] = int(res["metrics"].get("fedtest_model_version", 0) - start_version)
    finally:
        srv.stop()
    drift = versions_from_prior(srv.db)
    res["final_from_prior"] = drift[-1][1]
    res["max_from_prior"] = max(d for _, d, _ in drift)
    res["final_vector"] = drift[-1][2]
    res["seconds"] = round(time.time() - t0, 1)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def round_robin(clients):
    while True:
        live = [c for c in clients if not c.done()]
        if not live:
            return
        for c in live:
            c.step()


def mean(v):
    v = [x for x in v if x is not None]
    return sum(v) / len(v) if v else None


def token():
    return secrets.token_hex(16)


# ---------------------------------------------------------------- experiments
def cold_start(args, late):
    tmp = tempfile.mkdtemp(prefix=f"fed-cold-{late}-", dir=args.tmp)
    res = {"late": late}
    t0 = time.time()
    # Without federation: the late repository alone, no server.
    prior = os.path.join(args.prior_dir, f"no-{late}.json") if args.prior_dir else None
    if prior and not os.path.exists(prior):
        raise SystemExit(f"{prior} missing: python3 bench/fit_prior.py --train <the other three> --out {prior}")
    res["prior"] = prior or "embedded"
    solo = Repo(args.fedtest, tmp, late, load(late, args.late_builds), prior=prior)
    while not solo.done():
        solo.step()
    res["solo"] = solo.apfd
    res["solo_rt33"] = solo.rt33
    # With federation.
    others = [h for h in HISTORIES if h != late]
    toks = {h: token() for h in HISTORIES}
    srv = Server(args.fedtest, tmp, list(toks.values()), args.serve_cold,
                 env={"FEDTEST_PRIOR": prior} if prior else None)
    try:
        warm = [Repo(args.fedtest, tmp, h, load(h, args.warmup), srv, toks[h], prior) for h in others]
        round_robin(warm)
        res["warmup_builds"] = {w.name: len(w.cycles) for w in warm}
        res["version_at_join"] = srv.metrics().get("fedtest_model_version")
        fed = Repo(args.fedtest, tmp, late, load(late, args.late_builds), srv, toks[late], prior)
        if args.pull_once:
            # Variant: pull the global model once at join time (nothing to push yet), then
            # replay without syncing: separates "starts from the federation's model" from
            # "keeps syncing".
            fed.sync()
            fed.server = None
        while not fed.done():
            fed.step()
        res["fed"] = fed.apfd
        res["fed_rt33"] = fed.rt33
        res["late_builds"] = len(fed.cycles)
        res["choices"] = fed.choices
        res["sync_fail"] = sum(r.sync_fail for r in warm + [fed])
        res["errors"] = solo.ft.errors + fed.ft.errors + sum(w.ft.errors for w in warm)
        res["metrics"] = srv.metrics()
        res["sync_median_ms"] = round(1000 * sorted(fed.ft.timing["sync"])[len(fed.ft.timing["sync"]) // 2], 1)
    finally:
        srv.stop()
    res["seconds"] = round(time.time() - t0, 1)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def poisoning(args, rule, mode):
    tmp = tempfile.mkdtemp(prefix=f"fed-poison-{rule}-{mode}-", dir=args.tmp)
    t0 = time.time()
    toks = {h: token() for h in HISTORIES}
    extra = list(args.serve_poison) + (["--rule", "median"] if rule == "median" else [])
    srv = Server(args.fedtest, tmp, list(toks.values()), extra)
    res = {"rule": rule, "mode": mode}
    try:
        honest = [Repo(args.fedtest, tmp, h, load(h, args.poison_builds), srv, toks[h])
                  for h in HISTORIES if h != args.attacker]
        cyc = load(args.attacker, args.poison_builds)
        if mode == "none":
            fourth = Repo(args.fedtest, tmp, args.attacker, cyc, srv, toks[args.attacker])
        else:
            fourth = Attacker(args.fedtest, tmp, args.attacker, cyc, srv, toks[args.attacker], mode,
                              [h.dir for h in honest])
        round_robin(honest + [fourth])
        res["honest"] = {h.name: h.apfd for h in honest}
        res["choices"] = {h.name: h.choices for h in honest}
        res["sync_fail"] = sum(h.sync_fail for h in honest)
        res["errors"] = sum(h.ft.errors for h in honest)
        if mode != "none":
            res["attacker"] = fourth.codes
        res["metrics"] = srv.metrics()
    finally:
        srv.stop()
    res["seconds"] = round(time.time() - t0, 1)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def fmt(x):
    return "-" if x is None else f"{x:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fedtest", default=os.path.join(ROOT, "target", "release", "fedtest"))
    ap.add_argument("--only", choices=["cold", "poison", "long"])
    ap.add_argument("--late", default="iofrol,dune,druid")
    ap.add_argument("--warmup", type=int, default=200, help="cap on each other repository's warm-up builds")
    ap.add_argument("--late-builds", type=int, default=300, help="cap on the late joiner's builds")
    ap.add_argument("--first", type=int, default=50, help="scored builds that count as the cold start")
    ap.add_argument("--poison-builds", type=int, default=150, help="cap on each poisoning client's builds")
    ap.add_argument("--attacker", default="dune")
    ap.add_argument("--modes", default="none,flip,scale100")
    ap.add_argument("--rules", default="trimmed-mean,median")
    ap.add_argument("--serve-cold", default="--buffer 3 --flush-secs 5 --rate 100 --burst 100")
    ap.add_argument("--serve-poison", default="--rate 100 --burst 100")
    ap.add_argument("--serve-long", default="--flush-secs 2 --rate 100 --burst 100")
    ap.add_argument("--long-builds", type=int, default=170, help="cap on each long-attack client's builds")
    ap.add_argument("--long-versions", type=int, default=200, help="versions the long attack lasts at least")
    ap.add_argument("--long-alone-secs", type=int, default=900,
                    help="at most this long the attacker goes on alone to reach --long-versions")
    ap.add_argument("--fedtest-before", help="also run the long attack against this (older) binary")
    ap.add_argument("--pull-once", action="store_true",
                    help="cold start variant: the late joiner pulls the global model once, then never syncs")
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--prior-dir", help="leave-one-history-out priors: DIR/no-<late>.json (bench/fit_prior.py) "
                    "replaces the embedded prior for every process of that late joiner's experiment")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()
    args.serve_cold, args.serve_poison = args.serve_cold.split(), args.serve_poison.split()
    args.serve_long = args.serve_long.split()
    if not os.access(args.fedtest, os.X_OK):
        sys.exit(f"no binary at {args.fedtest}: cargo build --release")
    tasks = []
    if args.only in (None, "cold"):
        tasks += [("cold", l) for l in args.late.split(",") if l]
    if args.only in (None, "poison"):
        tasks += [("poison", r, m) for r in args.rules.split(",") for m in args.modes.split(",")]
    if args.only in (None, "long"):
        bins = [(args.fedtest, "new")] + ([(args.fedtest_before, "before")] if args.fedtest_before else [])
        tasks += [("long", b, l, a) for b, l in bins for a in (False, True)]
    run = {"cold": cold_start, "poison": poisoning, "long": long_attack}
    t0 = time.time()
    results = []
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        futs = {ex.submit(run[t[0]], args, *t[1:]): t for t in tasks}
        for f in cf.as_completed(futs):
            r = f.result()
            r["kind"] = futs[f][0]
            results.append(r)
            sys.stderr.write(f"done {futs[f][0]} {futs[f][2:]} in {r['seconds']} s\n")
    if args.json:
        json.dump(results, open(args.json, "w"))

    cold = sorted([r for r in results if r["kind"] == "cold"], key=lambda r: r["late"])
    if cold:
        print(f"\nCold start{' (late joiner pulls once, then no sync)' if args.pull_once else ''}"
              f"{', leave-one-history-out priors' if args.prior_dir else ', embedded prior'} (warm-up <= {args.warmup} builds per other repository, round-robin; "
              f"late joiner <= {args.late_builds} builds; server {' '.join(args.serve_cold)})")
        print("| late joiner | scored builds | first 50: no fed | first 50: fed | Δ | rest: no fed | rest: fed | Δ | global version at join | late joiner's sync choice (global/blend/local) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        k = args.first
        for r in cold:
            s1, f1 = mean(r["solo"][:k]), mean(r["fed"][:k])
            s2, f2 = mean(r["solo"][k:]), mean(r["fed"][k:])
            d = lambda a, b: "-" if a is None or b is None else f"{b - a:+.3f}"
            c = r["choices"]
            print(f"| {r['late']} | {len(r['fed'])} | {fmt(s1)} | {fmt(f1)} | {d(s1, f1)} | {fmt(s2)} | {fmt(f2)} | "
                  f"{d(s2, f2)} | {int(r['version_at_join'] or 0)} | {c.get('global', 0)}/{c.get('blend', 0)}/{c.get('local', 0)} |")
        for r in cold:
            print(f"  {r['late']}: warm-up {r['warmup_builds']}, sync failures {r['sync_fail']}, plan/record errors "
                  f"{r['errors']}, sync median {r['sync_median_ms']} ms, {r['seconds']} s")
    pois = [r for r in results if r["kind"] == "poison"]
    if pois:
        print(f"\nPoisoning (4 clients × <= {args.poison_builds} builds, round-robin; attacker = {args.attacker}'s "
              f"real deltas, transformed, samples=1000; honest = the other three; server {' '.join(args.serve_poison)})")
        names = [h for h in HISTORIES if h != args.attacker]
        print("| rule | attacker | " + " | ".join(f"{n} APFD" for n in names) + " | honest mean | drop vs no attacker | attacker's POSTs (status: count) |")
        print("|---|---|" + "---|" * len(names) + "---|---|---|")
        base = {}
        for r in pois:
            if r["mode"] == "none":
                base[r["rule"]] = mean([mean(r["honest"][n]) for n in names])
        order = {m: i for i, m in enumerate(args.modes.split(","))}
        for r in sorted(pois, key=lambda r: (r["rule"], order.get(r["mode"], 9))):
            per = [mean(r["honest"][n]) for n in names]
            hm = mean(per)
            drop = "-" if r["mode"] == "none" or r["rule"] not in base else f"{base[r['rule']] - hm:+.4f}"
            att = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("attacker", {}).items())) or "-"
            print(f"| {r['rule']} | {r['mode']} | " + " | ".join(fmt(x) for x in per) + f" | {hm:.4f} | {drop} | {att} |")
        for r in pois:
            m = r["metrics"]
            rej = {k.split('reason="')[1].rstrip('"}'): int(v) for k, v in m.items()
                   if "rejected" in k and 'reason="' in k and v}
            print(f"  {r['rule']}/{r['mode']}: model version {int(m.get('fedtest_model_version', 0))}, rejected {rej}, "
                  f"honest sync failures {r['sync_fail']}, {r['seconds']} s")
    longs = [r for r in results if r["kind"] == "long"]
    if longs:
        names = [h for h in HISTORIES if h != args.attacker]
        print(f"\nLong attack (one token in four floods worst-case updates at the highest accepted rate; "
              f"honest = {', '.join(names)}, <= {args.long_builds} builds each; server {' '.join(args.serve_long)})")
        print("| binary | attacker | versions | ‖global − prior‖ final | max over versions | ‖final − no-attack final‖ | "
              "honest mean APFD | loss vs no attack | attacker's POSTs (status: count) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label in ("before", "new"):
            rs = {r["attack"]: r for r in longs if r["binary"] == label}
            base = rs.get(False)
            for attack in (False, True):
                r = rs.get(attack)
                if not r:
                    continue
                hm = mean([mean(r["honest"][n]) for n in names])
                loss = "-" if not attack or not base else f"{mean([mean(base['honest'][n]) for n in names]) - hm:+.4f}"
                apart = "-" if not attack or not base else \
                    f"{math.sqrt(sum((a - b) ** 2 for a, b in zip(r['final_vector'], base['final_vector']))):.3f}"
                att = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("attacker", {}).items())) or "-"
                print(f"| {label} | {'flood' if attack else 'none (dune honest)'} | {r['versions']} | "
                      f"{r['final_from_prior']:.3f} | {r['max_from_prior']:.3f} | {apart} | {hm:.4f} | {loss} | {att} |")
        for r in longs:
            print(f"  {r['binary']}/{'attack' if r['attack'] else 'none'}: honest sync failures {r['sync_fail']}, "
                  f"{r['seconds']} s")
    print(f"\ntotal {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
