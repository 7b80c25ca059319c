#!/usr/bin/env python3
"""Fleet replay through the real federation (issue 14, point 2).

A fleet of change-aware sibling repositories (JSON-lines histories with `changed_files`, cycle
ids = commit ids, one `<name>.bundle` git bundle each for the commit dates) is replayed through
one real `fedtest serve` and real `fedtest` clients (plan before the build, record after, `sync
--server URL` after every record), in **interleaved time order**: every build of every member
is placed at its commit's committer date (made monotone within each repository, so a member's
own order is never changed) and the fleet builds side by side in that order.

Scoring is exactly that of the benchmark's replay driver (`replay.py`, imported: the same APFD
function, scored only on builds with a failure and more than one test, `plan --budget 100%`).

Experiments (each one a fresh server and fresh data dirs):

  fleet        every member from its first build, syncing: each member's whole-history APFD
               *with* federation. Then each --unseen history (default jinja, never part of the
               fleet) joins the finished fleet late and replays its whole history, syncing.
  loo:L        leave-one-repository-out: the fleet without L replays in time order, then L
               joins late and replays its history, syncing (arm c, "the fleet's global model").
  solo         each member (and each unseen history) alone, no server: with the shipped prior
               (arm b; also its whole-history APFD *without* federation) and with a neutral
               prior (arm a: a model.json with every weight 0, passed as FEDTEST_PRIOR, which
               replaces the embedded prior in the client).
  central:L    a logistic model fitted centrally on the other members' examples (the same
               examples `fedtest record` stores, harvested and fitted as bench/fit_prior.py does:
               per-history weight normalisation, L2 = 1, the two clamped change weights
               clamped) is served as the global model by a server that never aggregates
               (FEDTEST_PRIOR=central.json for the server only; --buffer 1000000, so version 1
               stays the central model); L joins it and replays, syncing — the same client code
               path as arm c, so federated vs central differ only in the model served.

Reported per joiner: mean APFD over its first --first scored builds for a/b/c/central, the
whole-history APFD with and without federation, exp-history and optimal on the same builds
(pure Python, from replay.py), the federated/central share of the central fit's gain over the
shipped prior; and costs of the fleet run (payload bytes per sync, syncs per build, server CPU
seconds and database size).

    python3 bench/fleet_federation.py --data DIR [--data DIR2 ...] \
        --fleet markupsafe,itsdangerous,more-itertools,sqlparse,pluggy,flask --unseen jinja \
        --jobs 2 --json out.json

Every --data DIR is searched for `<name>.jsonl.gz` and `<name>.bundle` (or an already cloned
bare `<name>.git`). `--replay` points at the benchmark's replay.py (default: ../shared/bench/
replay.py next to the checkout). At most --jobs experiments run at once; each runs one client
process at a time (plus its server).
"""
import argparse, concurrent.futures as cf, gzip, json, os, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------- data
def find(dirs, name, ext):
    for d in dirs:
        p = os.path.join(d, name + ext)
        if os.path.exists(p):
            return p
    return None


def commit_dates(dirs, name, tmp):
    """{sha: committer unix time} of every commit reachable in the history's bundle."""
    git = find(dirs, name, ".git")
    if git is None:
        bundle = find(dirs, name, ".bundle")
        if bundle is None:
            sys.exit(f"no {name}.bundle or {name}.git in {dirs}")
        git = os.path.join(tmp, f"{name}.git")
        if not os.path.exists(git):
            subprocess.run(["git", "-c", "init.defaultBranch=main", "clone", "-q", "--bare", bundle, git],
                           check=True, capture_output=True)
    out = subprocess.run(["git", f"--git-dir={git}", "log", "--all", "--format=%H %ct"], check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def load_history(dirs, name, tmp):
    path = find(dirs, name, ".jsonl.gz")
    if path is None:
        sys.exit(f"no {name}.jsonl.gz in {dirs}")
    cycles = [json.loads(l) for l in gzip.open(path, "rt") if l.strip()]
    dates = commit_dates(dirs, name, tmp)
    by_prefix = {}
    for sha, ct in dates.items():
        by_prefix[sha[:10]] = int(ct)
    t, missing = 0, 0
    for c in cycles:
        ct = by_prefix.get(str(c["cycle"])[:10])
        if ct is None:
            missing += 1
            ct = t
        t = max(t, ct)  # monotone within the repository: its own order is kept
        c["_t"] = t
    if missing:
        sys.stderr.write(f"{name}: {missing} cycles without a commit date (placed at the previous one)\n")
    return cycles


def interleave(histories):
    """[(name, cycle index)] of every build of every history, by date (ties: name, index)."""
    ev = [(c["_t"], n, i) for n, cyc in histories.items() for i, c in enumerate(cyc)]
    return [(n, i) for _, n, i in sorted(ev)]


# ---------------------------------------------------------------- baselines (pure Python)
def baselines(cycles):
    """Per scored build: APFD of exp-history and of the optimal order (replay.py's classes)."""
    eh, opt = R.ExpHistory(), R.Optimal()
    out = {"exp-history": [], "optimal": []}
    for cyc in cycles:
        runnable = [t for t in cyc["tests"] if t["verdict"] in ("pass", "fail")]
        ids = [t["id"] for t in runnable]
        failing = {t["id"] for t in runnable if t["verdict"] == "fail"}
        if failing and len(ids) > 1:
            out["exp-history"].append(R.apfd(eh.plan(cyc, ids), failing))
            out["optimal"].append(R.apfd(opt.plan(cyc, ids), failing))
        eh.record(cyc)
    return out


# ---------------------------------------------------------------- experiments
def server_stats(srv):
    """Request counts by route, server CPU seconds, database bytes (with WAL)."""
    import urllib.request
    with urllib.request.urlopen(srv.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("fedtest_request_duration_seconds_count"):
            route = line.split('route="')[1].split('"')[0]
            counts[route] = int(float(line.rsplit(" ", 1)[1]))
    with open(f"/proc/{srv.p.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    db = sum(os.path.getsize(srv.db + s) for s in ("", "-wal", "-shm") if os.path.exists(srv.db + s))
    return {"requests": counts, "cpu_s": cpu, "db_bytes": db, "metrics": srv.metrics()}


def payload_sizes(srv, repo):
    """Bytes of one GET /v1/model answer and of one update body (`sync --dry-run`)."""
    import urllib.request
    schema = F.schema_of(repo.ft.bin)
    req = urllib.request.Request(srv.url + f"/v1/model?schema={schema}", headers={"Authorization": f"Bearer {repo.sync_env['FEDTEST_TOKEN']}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        get = len(r.read())
    p = subprocess.run([repo.ft.bin, "--data-dir", repo.dir, "sync", "--dry-run"], capture_output=True, text=True,
                       env=repo.ft.env, timeout=60)
    post = len(p.stdout.encode()) if p.stdout.strip() else None
    return {"get_model_bytes": get, "update_body_bytes": post}


def aggregates(db):
    """[(version, updates combined, learning rate applied)] of every aggregate the server made:
    how many tokens a fold combined (fewer than --buffer: a time flush) and whether the guards
    (a time flush of fewer than --min-tokens tokens, the drift bounds) shortened its step."""
    import sqlite3
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return c.execute("SELECT version, updates, lr FROM versions WHERE note = 'aggregate' ORDER BY version").fetchall()
    finally:
        c.close()


def aggregate_summary(rows):
    """'n updates: count' over the aggregates, and how many applied less than the full step."""
    sizes = {}
    for _, n, _ in rows:
        sizes[n] = sizes.get(n, 0) + 1
    damped = sum(1 for _, _, lr in rows if lr is not None and lr < 0.999)
    return {"aggregates": len(rows), "by_size": dict(sorted(sizes.items())), "damped": damped}


def run_fleet(args, members, joiners, tag, server_env=None, server_extra=None):
    """Members replay interleaved by date through one server, syncing; then each joiner in
    turn joins the finished fleet and replays its whole history, syncing."""
    tmp = tempfile.mkdtemp(prefix=f"fleet-{tag}-", dir=args.tmp)
    t0 = time.time()
    names = list(members) + list(joiners)
    toks = {n: F.token() for n in names}
    if server_env is None and args.prior:
        server_env = {"FEDTEST_PRIOR": args.prior}
    srv = F.Server(args.fedtest, tmp, list(toks.values()), server_extra or args.serve, env=server_env)
    res = {"tag": tag, "members": list(members), "joiners": list(joiners)}
    try:
        repos = {n: F.Repo(args.fedtest, tmp, n, HIST[n], srv, toks[n], args.prior) for n in members}
        for n, i in interleave({n: HIST[n] for n in members}):
            r = repos[n]
            assert r.i == i
            r.step()
        res["fleet_apfd"] = {n: r.apfd for n, r in repos.items()}
        res["fleet_choices"] = {n: r.choices for n, r in repos.items()}
        res["fleet_builds"] = sum(len(HIST[n]) for n in members)
        res["fleet_syncs"] = sum(len(r.ft.timing["sync"]) for r in repos.values())
        res["fleet_sync_fail"] = sum(r.sync_fail for r in repos.values())
        res["fleet_errors"] = sum(r.ft.errors for r in repos.values())
        if members:
            res["after_fleet"] = server_stats(srv)
            res["payload"] = payload_sizes(srv, next(iter(repos.values())))
            res["sync_median_ms"] = round(1000 * sorted(sum((r.ft.timing["sync"] for r in repos.values()), []))[
                res["fleet_syncs"] // 2], 1) if res["fleet_syncs"] else None
        res["version_at_join"] = srv.metrics().get("fedtest_model_version")
        res["aggregates_at_join"] = aggregates(srv.db)
        res["global_at_join"] = F.versions_from_prior(srv.db)[-1][2]
        res["joined"] = {}
        for j in joiners:
            r = F.Repo(args.fedtest, tmp, j, HIST[j], srv, toks[j], args.prior)
            while not r.done():
                r.step()
            res["joined"][j] = {"apfd": r.apfd, "choices": r.choices, "sync_fail": r.sync_fail,
                                "errors": r.ft.errors, "backtest": backtest(r)}
        res["final"] = server_stats(srv)
    finally:
        srv.stop()
    res["aggregates"] = aggregates(srv.db)
    if args.save_db:
        import shutil
        os.makedirs(args.save_db, exist_ok=True)
        for s in ("", "-wal"):
            if os.path.exists(srv.db + s):
                shutil.copy(srv.db + s, os.path.join(args.save_db, f"{tag.replace(':', '-')}.sqlite{s}"))
    res["seconds"] = round(time.time() - t0, 1)
    if not args.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def backtest(repo):
    """The repository's backtest record at the end (`fedtest model --json`): every candidate's
    discounted APFD on the failing builds it was scored on, and who plans."""
    p = subprocess.run([repo.ft.bin, "--data-dir", repo.dir, "model", "--json"], capture_output=True, text=True,
                       env=repo.ft.env, timeout=60)
    try:
        d = json.loads(p.stdout)
    except ValueError:
        return None
    return {"backtest": d.get("backtest"), "strategy": d.get("strategy")}


def run_solo(args, name, prior_label):
    tmp = tempfile.mkdtemp(prefix=f"solo-{name}-{prior_label}-", dir=args.tmp)
    t0 = time.time()
    prior = args.prior if prior_label == "shipped" else PRIORS[prior_label]
    r = F.Repo(args.fedtest, tmp, name, HIST[name], prior=prior)
    while not r.done():
        r.step()
    bt = backtest(r)
    if not args.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return {"tag": f"solo:{name}:{prior_label}", "apfd": r.apfd, "errors": r.ft.errors, "backtest": bt,
            "seconds": round(time.time() - t0, 1)}


def run_static(args, joiner, model_path, tag, binary):
    """The joiner joins a server that serves `model_path` as its global model and never
    aggregates (FEDTEST_PRIOR for the server only; the clients keep the shipped prior)."""
    a = argparse.Namespace(**vars(args))
    a.fedtest = binary
    return run_fleet(a, [], [joiner], tag, server_env={"FEDTEST_PRIOR": model_path},
                     server_extra=["--buffer", "1000000", "--flush-secs", "100000000", "--rate", "100",
                                   "--burst", "100"])


# ---------------------------------------------------------------- central fit
def harvest(args, name):
    """One history's stored training examples, as bench/fit_prior.py harvests them (`record`
    only, the examples read out of the store as they appear): (names, X, y, w)."""
    import fit_prior as FP
    names, X, y, w, _, _ = FP.harvest(args.fedtest, name, args.tmp, cycles=HIST[name])
    return names, X, y, w


def harvest_all(args, names):
    return {n: harvest(args, n) for n in names}


def central_model(parts, names, schema):
    import fit_prior as FP
    m = FP.prior_model(names, parts)
    # fit_prior writes schema 1; the harvested names are the binary's own (schema 2 has 27).
    m["source"], m["schema"] = "prior", schema
    return m


# ---------------------------------------------------------------- report
def mean(v):
    v = [x for x in v if x is not None]
    return sum(v) / len(v) if v else None


def f3(x):
    return "-" if x is None else f"{x:.3f}"


def report(args, R_):
    k = args.first
    solo = {r["tag"]: r for r in R_ if r["tag"].startswith("solo:")}
    loo = {r["tag"][4:]: r for r in R_ if r["tag"].startswith("loo:")}
    cen = {r["tag"][8:]: r for r in R_ if r["tag"].startswith("central:")}
    full = next((r for r in R_ if r["tag"] == "fleet"), None)
    lines = []
    P = lines.append
    P(f"First {k} scored builds of each late joiner (mean APFD); a = neutral prior, no federation; b = shipped "
      f"prior, no federation; c = joins the fleet late (fleet without it, {'unseen: the whole fleet'}), syncing; "
      f"central = joins a server serving a model fitted centrally on the same fleet data.")
    P("")
    P("| joiner | scored (first k) | a neutral | b shipped | c fleet global | c − b | c − a | central | central − b | "
      "(c−b)/(central−b) | exp-history | optimal | c's sync choices |")
    P("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for j in args.fleet + args.unseen:
        a = solo.get(f"solo:{j}:neutral", {}).get("apfd")
        b = solo.get(f"solo:{j}:shipped", {}).get("apfd")
        src = loo.get(j) if j in args.fleet else full
        c = src["joined"][j]["apfd"] if src and j in src.get("joined", {}) else None
        ch = src["joined"][j]["choices"] if c is not None else {}
        ce = cen.get(j)
        ce = ce["joined"][j]["apfd"] if ce else None
        bl = BASE[j]
        ma, mb, mc, mce = (mean(x[:k]) if x else None for x in (a, b, c, ce))
        eh, op = mean(bl["exp-history"][:k]), mean(bl["optimal"][:k])
        d = lambda x, y: None if x is None or y is None else x - y
        share = None if mc is None or mce is None or mb is None or abs(mce - mb) < 1e-9 else (mc - mb) / (mce - mb)
        rows.append((j, ma, mb, mc, mce))
        P(f"| {j}{' (unseen)' if j in args.unseen else ''} | {len(bl['optimal'][:k])} | {f3(ma)} | {f3(mb)} | {f3(mc)} | "
          f"{f3(d(mc, mb))} | {f3(d(mc, ma))} | {f3(mce)} | {f3(d(mce, mb))} | {f3(share)} | {f3(eh)} | {f3(op)} | "
          f"{'/'.join(f'{x}:{y}' for x, y in sorted(ch.items())) or '-'} |")
    for label, sel in (("fleet members (leave-one-out)", args.fleet), ("unseen", args.unseen),
                       ("all joiners", args.fleet + args.unseen)):
        rs = [r for r in rows if r[0] in sel and None not in r[1:4]]
        if not rs:
            continue
        ma, mb, mc = (mean([r[i] for r in rs]) for i in (1, 2, 3))
        ces = [r for r in rs if r[4] is not None]
        mce = mean([r[4] for r in ces]) if ces else None
        mb_c = mean([r[2] for r in ces]) if ces else None
        mc_c = mean([r[3] for r in ces]) if ces else None
        worst = min(rs, key=lambda r: r[3] - r[2])
        share = None if mce is None or abs(mce - mb_c) < 1e-9 else (mc_c - mb_c) / (mce - mb_c)
        P(f"| **mean, {label}** ({len(rs)}) | | {f3(ma)} | {f3(mb)} | {f3(mc)} | {f3(mc - mb)} | {f3(mc - ma)} | "
          f"{f3(mce)} | {f3(None if mce is None else mce - mb_c)} | {f3(share)} | | | worst c − b: {worst[0]} "
          f"{worst[3] - worst[2]:+.3f} |")
    stat = {r["tag"]: r for r in R_ if r["tag"].startswith(("static:", "cstatic:"))}
    if stat:
        labels = sorted({t.split(":")[1] for t in stat}, key=lambda x: (x != "shipped-binary", x))
        P("")
        P(f"Design variants, first {k} scored builds (mean APFD). The joiner joins a server serving, unchanged, "
          f"the global model its leave-one-out fleet had made when it joined (static global: the joiner's own "
          f"updates are not aggregated), or the central fit (static central), planned by each binary.")
        P("")
        P("| joiner | b shipped | " + " | ".join(f"static global, {l} | static central, {l}" for l in labels) + " |")
        P("|---|---|" + "---|---|" * len(labels))
        cols = {}
        for j in args.fleet + args.unseen:
            b = mean((solo.get(f"solo:{j}:shipped", {}).get("apfd") or [])[:k])
            row = [b]
            for l in labels:
                for kind in ("static", "cstatic"):
                    r = stat.get(f"{kind}:{l}:{j}") or (cen.get(j) if (kind, l) == ("cstatic", "shipped-binary") else None)
                    row.append(mean(r["joined"][j]["apfd"][:k]) if r else None)
            cols[j] = row
            P(f"| {j} | " + " | ".join(f3(x) for x in row) + " |")
        for label, sel in (("fleet members", args.fleet), ("all joiners", args.fleet + args.unseen)):
            rs = [cols[j] for j in sel if None not in cols[j][:2]]
            if rs:
                P(f"| **mean, {label}** | " + " | ".join(f3(mean([r[i] for r in rs if r[i] is not None]))
                                                      for i in range(len(rs[0]))) + " |")
    aggs = [r for r in R_ if r.get("aggregates") is not None and not r["tag"].startswith(("static:", "cstatic:", "central:"))]
    if aggs:
        P("")
        P(f"Aggregates the server made (server `{' '.join(args.serve)}`): while the fleet replayed (before the "
          f"joiner), then while the joiner replayed; 'n: count' = aggregates combining n tokens' updates "
          f"(fewer than --buffer: a time flush), damped = applied less than the full step (a flush of fewer than "
          f"--min-tokens tokens, or a drift bound).")
        P("")
        P("| run | fleet phase: aggregates | by size | damped | joiner phase: aggregates | by size | damped |")
        P("|---|---|---|---|---|---|---|")
        for r in sorted(aggs, key=lambda r: r["tag"]):
            n0 = len(r.get("aggregates_at_join") or [])
            a, b = aggregate_summary(r["aggregates"][:n0]), aggregate_summary(r["aggregates"][n0:])
            fmt_ = lambda x: ", ".join(f"{k}: {v}" for k, v in x["by_size"].items()) or "-"
            P(f"| {r['tag']} | {a['aggregates']} | {fmt_(a)} | {a['damped']} | {b['aggregates']} | {fmt_(b)} | "
              f"{b['damped']} |")
    bts = []
    for r in R_:
        for j, x in (r.get("joined") or {}).items():
            if x.get("backtest"):
                bts.append((r["tag"], x["backtest"]))
        if r.get("backtest"):
            bts.append((r["tag"], r["backtest"]))
    if bts:
        cands = ["local", "global", "prior", "history", "failed-first"]
        P("")
        P("Backtest record at the end of each replay (`fedtest model --json`): every candidate's discounted mean "
          "APFD (decay 0.975) on the failing builds it was scored on (scored builds in brackets), and who planned "
          "at the end.")
        P("")
        P("| run | " + " | ".join(cands) + " | leader at the end (since build) |")
        P("|---|" + "---|" * len(cands) + "---|")
        for tag, b in sorted(bts):
            e = (b.get("backtest") or {}).get("entries") or {}
            cell = lambda c: (f"{e[c]['apfd'] / e[c]['weight']:.3f} ({e[c]['scored']})"
                              if c in e and e[c].get("weight") else "-")
            st = b.get("strategy") or {}
            P(f"| {tag} | " + " | ".join(cell(c) for c in cands) + f" | {st.get('candidate')} "
              f"({st.get('since_build')}) |")
    if full:
        P("")
        P("Whole history of each member (mean APFD over all its scored builds): with federation = member of the "
          "fleet from its first build (interleaved by date, syncing after every build); without = alone, shipped "
          "prior.")
        P("")
        P("| member | scored builds | without federation | with federation | Δ | exp-history | optimal | sync choices |")
        P("|---|---|---|---|---|---|---|---|")
        ws, wf = [], []
        for n in args.fleet:
            w = mean(solo.get(f"solo:{n}:shipped", {}).get("apfd") or [])
            f = mean(full["fleet_apfd"].get(n) or [])
            ws.append(w), wf.append(f)
            ch = full["fleet_choices"].get(n, {})
            P(f"| {n} | {len(BASE[n]['optimal'])} | {f3(w)} | {f3(f)} | {f3(None if None in (w, f) else f - w)} | "
              f"{f3(mean(BASE[n]['exp-history']))} | {f3(mean(BASE[n]['optimal']))} | "
              f"{'/'.join(f'{x}:{y}' for x, y in sorted(ch.items())) or '-'} |")
        if None not in ws + wf:
            P(f"| **mean** | | {f3(mean(ws))} | {f3(mean(wf))} | {f3(mean(wf) - mean(ws))} | | | |")
        st, pl = full.get("after_fleet"), full.get("payload")
        if st:
            req = st["requests"]
            syncs, builds = full["fleet_syncs"], full["fleet_builds"]
            gets = sum(v for r, v in req.items() if "model" in r)
            posts = sum(v for r, v in req.items() if "update" in r)
            P("")
            P(f"Costs of the fleet run ({len(args.fleet)} members, {builds} builds, one sync per build): "
              f"{syncs} syncs, {full['fleet_sync_fail']} failed; requests {req}; "
              f"GET /v1/model answer {pl['get_model_bytes']} B, update body {pl['update_body_bytes']} B "
              f"(payload only, HTTP headers excluded): {(gets * pl['get_model_bytes'] + posts * (pl['update_body_bytes'] or 0)) / syncs:.0f} B "
              f"per sync on average ({gets / syncs:.2f} GETs and {posts / syncs:.2f} POSTs per sync); "
              f"server CPU {st['cpu_s']:.2f} s in all ({1000 * st['cpu_s'] / syncs:.2f} ms per sync); "
              f"database {st['db_bytes'] / 1024:.0f} KiB ({st['db_bytes'] / builds:.0f} B per build); "
              f"model versions {int(st['metrics'].get('fedtest_model_version', 0))}; client sync median "
              f"{full.get('sync_median_ms')} ms.")
    return "\n".join(lines)


def main():
    global R, F, HIST, BASE, PRIORS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True,
                    help="directory with <name>.jsonl.gz and <name>.bundle (repeatable)")
    ap.add_argument("--fleet", default="markupsafe,itsdangerous,more-itertools,sqlparse,pluggy,flask")
    ap.add_argument("--unseen", default="jinja", help="histories never in the fleet, joining it late")
    ap.add_argument("--loo", help="only these members as leave-one-out joiners (default: all)")
    ap.add_argument("--only", help="comma list of experiment kinds: fleet,loo,solo,central")
    ap.add_argument("--cap", type=int, help="smoke test: only each history's first CAP builds")
    ap.add_argument("--prior", help="a model.json every client and server uses as the shipped prior (FEDTEST_PRIOR): "
                    "one fitted without the fleet, when the binary's own prior has seen it")
    ap.add_argument("--first", type=int, default=30, help="scored builds that count as the late joiner's start")
    ap.add_argument("--serve", default="--buffer 3 --flush-secs 5 --rate 100 --burst 100")
    ap.add_argument("--fedtest", default=os.path.join(ROOT, "target", "release", "fedtest"))
    ap.add_argument("--replay", default=os.path.join(ROOT, "..", "shared", "bench", "replay.py"),
                    help="the benchmark's replay.py (metrics, JUnit writer, CLI driver)")
    ap.add_argument("--static-from", help="results (--json) of a full run, for --only static")
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL=BINARY: a design variant's fedtest binary, for --only static")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", help="fit_prior.py's example cache directory")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--save-db", metavar="DIR", help="copy each run's server database to DIR/<tag>.sqlite")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--from-json", help="only print the report of earlier --json files (comma-separated)")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(args.replay)))
    sys.path.insert(0, HERE)
    import replay as R  # noqa: E402
    import federation as F  # noqa: E402  (Server, Repo, token, versions_from_prior)
    args.fleet = [x for x in args.fleet.split(",") if x]
    args.unseen = [x for x in args.unseen.split(",") if x]
    args.data = [os.path.abspath(d) for d in args.data]
    args.serve = args.serve.split()
    args.fedtest = os.path.abspath(args.fedtest)
    if args.tmp:
        os.makedirs(args.tmp, exist_ok=True)
    gtmp = tempfile.mkdtemp(prefix="fleet-git-", dir=args.tmp)
    HIST = {n: load_history(args.data, n, gtmp)[:args.cap] for n in args.fleet + args.unseen}
    BASE = {n: baselines(c) for n, c in HIST.items()}
    if args.from_json:
        print(report(args, sum((json.load(open(f)) for f in args.from_json.split(",")), [])))
        return
    # The neutral prior: the embedded prior's model.json with every weight 0.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTEST_")}
    emb = json.loads(subprocess.run([args.fedtest, "--data-dir", tempfile.mkdtemp(dir=args.tmp), "model", "--json"],
                                    capture_output=True, text=True, env=env, check=True).stdout)
    emb = {k: emb[k] for k in ("schema", "source", "features", "weights", "intercept")}
    neutral = dict(emb, weights=[0.0] * len(emb["weights"]), intercept=0.0, source="prior")
    PRIORS = {"neutral": os.path.join(gtmp, "neutral.json")}
    json.dump(neutral, open(PRIORS["neutral"], "w"))

    only = set((args.only or "fleet,loo,solo,central").split(","))
    loo = [x for x in (args.loo.split(",") if args.loo else args.fleet) if x]
    results, lock = [], threading.Lock()
    t0 = time.time()
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        futs = []

        def submit(tag, fn, *a, **kw):
            futs.append((tag, ex.submit(fn, *a, **kw)))

        def central_all():
            ex_ = harvest_all(args, args.fleet)
            names = next(iter(ex_.values()))[0]
            out = []
            for j in loo + args.unseen:
                parts = [ex_[n][1:] for n in args.fleet if n != j]
                path = os.path.join(gtmp, f"central-no-{j}.json")
                json.dump(central_model(parts, names, F.schema_of(args.fedtest)), open(path, "w"))
                r = run_static(args, j, path, f"central:{j}", args.fedtest)
                r["central_model"] = json.load(open(path))
                out.append(r)
            return out

        if "static" in only:
            # The design variants: each joiner joins a server that serves, unchanged, the global
            # model its leave-one-out fleet had made when it joined (read from --static-from),
            # or its central fit; with --fedtest and with each --variant binary.
            prev = {r["tag"]: r for r in json.load(open(args.static_from))}
            bins = [("shipped-binary", args.fedtest)] + [tuple(v.split("=", 1)) for v in args.variant]
            for j in loo + args.unseen:
                src = prev.get(f"loo:{j}") or prev.get("fleet")
                vec = src["global_at_join"]
                gpath = os.path.join(gtmp, f"global-at-join-{j}.json")
                json.dump(dict(emb, weights=vec[:-1], intercept=vec[-1], source="prior"), open(gpath, "w"))
                cpath = (prev.get(f"central:{j}") or {}).get("central_model")
                if cpath:
                    json.dump(cpath, open(os.path.join(gtmp, f"central-no-{j}.json"), "w"))
                for label, b in bins:
                    submit(f"static:{label}:{j}", run_static, args, j, gpath, f"static:{label}:{j}", b)
                    if cpath and label != "shipped-binary":  # the shipped binary's is central:<joiner>
                        submit(f"cstatic:{label}:{j}", run_static, args, j, os.path.join(gtmp, f"central-no-{j}.json"),
                               f"cstatic:{label}:{j}", b)
        if "fleet" in only:
            submit("fleet", run_fleet, args, args.fleet, args.unseen, "fleet")
        if "loo" in only:
            for j in loo:
                submit(f"loo:{j}", run_fleet, args, [m for m in args.fleet if m != j], [j], f"loo:{j}")
        if "central" in only:
            submit("central", central_all)
        if "solo" in only:
            for n in args.fleet + args.unseen:
                for p in ("shipped", "neutral"):
                    submit(f"solo:{n}:{p}", run_solo, args, n, p)
        for tag, f in futs:
            r = f.result()
            for x in (r if isinstance(r, list) else [r]):
                results.append(x)
                sys.stderr.write(f"done {x['tag']} in {x['seconds']} s ({time.time() - t0:.0f} s)\n")
            if args.json:
                with lock:
                    json.dump(results, open(args.json, "w"))
    print(report(args, results))
    print(f"\ntotal {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
