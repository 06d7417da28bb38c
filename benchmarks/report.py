"""Turn ``benchmarks/results.json`` into docs/benchmarks.md and PNG plots.

python -m benchmarks.report     # rewrite the report from the last results
python -m benchmarks.report RESULTS.json DOCS_DIR   # another run's, elsewhere
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LABELS = {
    "floor": "redis-py GET+SET (floor)",
    "charon": "**django-charon-sessions**",
    "cache_django_redis": "`cache` on django-redis",
    "cache_redis": "`cache` on Django's RedisCache",
    "cached_db": "`cached_db` (django-redis + SQLite)",
    "db": "`db` (SQLite)",
    "bare_redis_py": "bare redis-py GET / GET+SET, no Django",
}


def _plain(name: str) -> str:
    return LABELS[name].replace("*", "").replace("`", "")


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


#: What the brief asks of the run itself, to judge its numbers at full strength.
FULL_RUN = {"rounds": 9, "memory_sessions": 100_000, "smallest": 1_000, "largest": 1_000_000}


def _result(met: bool, short: bool = False) -> str:
    return ("PASS" if met else "FAIL") + (" (short run)" if short else "")


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Judge each of the brief's numbers: (target, measured, wall time, result, how).

    The store-level ratios are CPU per operation (this process plus the
    Redis server), with the same ratio in wall time beside them. A result is
    marked "(short run)" when the run measured less than the brief asks
    (fewer rounds, sessions or sizes: ``--quick``, say).
    """
    st, mem = r["store"], r["memory"]
    few_rounds = st["rounds"] < FULL_RUN["rounds"]
    rw, ro = st["x_floor"]["rw"]["charon"], st["x_floor"]["ro"]["charon"]
    cheaper = st["cache_over_charon"]["rw"]
    how_store = f"store level, {st['rounds']} interleaved rounds of {st['batch']} ops, medians"

    charon, cache = mem["charon"], mem["cache_django_redis"]
    few_sessions = mem["sessions"] < FULL_RUN["memory_sessions"]
    anon = charon["anonymous"]["bytes_per_session"] / cache["anonymous"]["bytes_per_session"]
    signed = charon["signed_in"]["bytes_per_session"] / cache["signed_in"]["bytes_per_session"]
    how_mem = f"`used_memory` growth over {mem['sessions']:,} sessions, Redis defaults"

    q = r["requests"]
    req_ro = q["cache_django_redis"]["read"] / q["charon"]["read"]
    req_rw = q["cache_django_redis"]["rmw"] / q["charon"]["rmw"]
    if "e2e" in r:
        e = r["e2e"]
        gun = e["charon"]["rps"] / e["cache_django_redis"]["rps"]
        gunicorn = (
            f"{gun:.2f}x",
            "-",
            _result(gun >= 1.0),
            "requests/s, this engine's / `cache`'s",
        )
    else:
        gunicorn = ("-", "-", "not run", "the run had `--no-e2e`")

    ops = r["user_ops"]["charon"]
    clean = r["cleanup"]["charon"]
    sizes = sorted(r["by_size"]["charon"], key=int)
    small, big = r["by_size"]["charon"][sizes[0]], r["by_size"]["charon"][sizes[-1]]
    flat = max(big["read"] / small["read"], big["rmw"] / small["rmw"])
    short_span = int(sizes[0]) > FULL_RUN["smallest"] or int(sizes[-1]) < FULL_RUN["largest"]

    return [
        ("signed-in read-modify-write <= 1.15x the floor (CPU)", f"{rw['cpu']:.2f}x",
         f"{rw['wall']:.2f}x", _result(rw["cpu"] <= 1.15, few_rounds), how_store),
        ("read-only load <= 1.10x the floor (CPU)", f"{ro['cpu']:.2f}x", f"{ro['wall']:.2f}x",
         _result(ro["cpu"] <= 1.10, few_rounds), "same"),
        ("read-modify-write >= 1.5x cheaper than `cache` on django-redis (CPU)",
         f"{cheaper['cpu']:.2f}x", f"{cheaper['wall']:.2f}x",
         _result(cheaper["cpu"] >= 1.5, few_rounds), "same; `cache`'s cost / this engine's"),
        ("anonymous memory <= 1.0x `cache`", f"{anon:.2f}x", "-",
         _result(anon <= 1.0, few_sessions), how_mem),
        ("signed-in memory (index entry, metadata; no facts) <= 2.0x `cache` signed in",
         f"{signed:.2f}x", "-", _result(signed <= 2.0, few_sessions),
         "same; every session another user's"),
        ("read-only request throughput >= `cache` on django-redis", f"{req_ro:.2f}x", "-",
         _result(req_ro >= 1.0), "Django's handler in process; `cache`'s time / this engine's"),
        ("read-modify-write request throughput >= `cache` on django-redis", f"{req_rw:.2f}x",
         "-", _result(req_rw >= 1.0), "same"),
        ("gunicorn + wrk throughput >= `cache` on django-redis", *gunicorn),
        ("list a user with 1,000 sessions in one round trip",
         f"{ops['list_1000_round_trips']} round trip(s)", f"{ops['list_1000_ms']:,} ms",
         _result(ops["list_1000_round_trips"] == 1), "writes to the socket, counted"),
        ("end a user with 10,000 sessions in one round trip",
         f"{ops['end_10000_round_trips']} round trip(s)", f"{ops['end_10000_ms']:,} ms",
         _result(ops["end_10000_round_trips"] == 1), "same"),
        ("cleanup >= 100,000 stale entries/s", f"{clean['per_second']:,}/s", "-",
         _result(clean["per_second"] >= 100_000),
         f"{clean['removed']:,} entries, wall time, one process"),
        ("load and save flat within 10% from 1,000 to 1,000,000 sessions", f"{flat:.2f}x",
         "-", _result(flat <= 1.10, short_span),
         f"{int(sizes[0]):,} to {int(sizes[-1]):,} stored; slower of load and save, wall time"),
    ]  # fmt: skip


def targets_text(r: dict[str, Any]) -> str:
    """The targets as plain text, for the terminal."""
    rows = [(t.replace("`", ""), m, w, res) for t, m, w, res, _ in targets(r)]
    width = max(len(t) for t, *_ in rows)
    lines = [f"{'Target':{width}}  {'measured':>18}  {'wall':>9}  result"]
    lines += [f"{t:{width}}  {m:>18}  {w:>9}  {res}" for t, m, w, res in rows]
    return "\n".join(lines)


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    q, login = r["requests"], r["login"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench` (`python -m benchmarks.run`) from one run: every",
        "engine on the same redis-server (started on loopback by the run) and the same",
        f"SQLite file. Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']},",
        f"Django {m['django']}, redis-py {m['redis_py']} (hiredis), Redis {m['redis_server']}.",
        f"A PING through redis-py took {m['ping_us']} us on loopback during the run; most",
        "figures are made of such round trips, Python and, for this engine, Lua.",
        f"Figures are medians of {r['args']['reps']} repetitions; the run took "
        f"{r['seconds'] // 60} minutes. The raw figures are in `benchmarks/results.json`.",
        "",
        "## Targets",
        "",
        "The brief's numbers, judged from this run. Ratios are this engine's over the",
        'other\'s, except "cheaper" and throughput, where above 1 is better. Where the',
        'target is about cost, "Measured" is CPU per operation (this process plus the',
        "Redis server) and the wall-time ratio is beside it.",
        "",
        "| Target | Measured | Wall time | Result | How |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t} | {v} | {w} | {res if res.startswith('PASS') else f'**{res}**'} | {h} |"
        for t, v, w, res, h in targets(r)
    ]
    lines += ["", *_store_table(r)]
    lines += [
        "## Requests",
        "",
        "A signed-in request through Django's WSGI handler in process (SessionMiddleware,",
        "AuthenticationMiddleware, the user from SQLite, and for this engine its",
        "SessionMetadataMiddleware as the README sets it up), rotating over 200",
        "sessions. The login is store level: an anonymous session with data is loaded,",
        "cycled and saved signed in, as `django.contrib.auth.login()` does.",
        "",
        "| Engine | read-only | x floor | read-modify-write | x floor | x `cache` | login "
        "| x floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in q:
        lines.append(
            f"| {LABELS[name]} | {_fmt(q[name]['read'])} us | "
            f"{q[name]['read'] / q['floor']['read']:.2f} | {_fmt(q[name]['rmw'])} us | "
            f"{q[name]['rmw'] / q['floor']['rmw']:.2f} | "
            f"{q[name]['rmw'] / q['cache_django_redis']['rmw']:.2f} | "
            f"{_fmt(login[name])} us | {login[name] / login['floor']:.2f} |"
        )
    lines += ["", "![Requests](images/bench-requests.png)", ""]
    lines += _by_size_table(r)
    lines += _memory_table(r)
    lines += _user_ops_table(r)
    lines += _cleanup_table(r)
    if "e2e" in r:
        lines += _e2e_table(r)
    lines += [
        "## Reading the figures",
        "",
        "See [benchmarks-notes.md](benchmarks-notes.md) for what limits each figure,",
        "the profiles behind them, and what changed in the engine because of them;",
        "[benchmarks-cleanup.md](benchmarks-cleanup.md) has the cleanup run at a",
        "million stale entries.",
        "",
    ]
    return "\n".join(lines)


def _by_size_table(r: dict[str, Any]) -> list[str]:
    by = r["by_size"]
    sizes = sorted({s for e in by if e != "bare_redis_py" for s in by[e]}, key=int)
    head = " | ".join(f"{int(s):,} stored" for s in sizes)
    lines = [
        "## Load and save by sessions stored",
        "",
        "Store level (no request): load of a signed-in session, and a",
        "read-modify-write save, in microseconds; read / read-modify-write.",
        "",
        f"| Engine | {head} |",
        "|---|" + "---|" * len(sizes),
    ]
    for name, per in by.items():
        cells = [
            f"{_fmt(per[s]['read'])} / {_fmt(per[s]['rmw'])}" if s in per else "-" for s in sizes
        ]
        lines.append(f"| {LABELS[name]} | {' | '.join(cells)} |")
    lines += ["", "![Load and save by size](images/bench-sizes.png)", ""]
    return lines


def _store_table(r: dict[str, Any]) -> list[str]:
    st = r["store"]
    lines = [
        "## Store level",
        "",
        "The `SessionStore` called directly (no request), with the same data in each:",
        "`DATA` of `benchmarks/measure.py` and Django's three auth keys. The floor is",
        "bare redis-py: `GET` and `pickle.loads`, and for a read-modify-write `GET`,",
        "`pickle.loads`, `SET ... EX` of the pickled dict. Read-only: load a signed-in",
        'session; read-modify-write: load, `s["visits"] += 1`, save.',
        "",
        f"Each of {st['rounds']} rounds runs a batch of {st['batch']} operations of each",
        "candidate in turn (the order rotates), on the same Redis server. CPU is this",
        "process's `time.process_time()` plus the server's `used_cpu_sys + used_cpu_user`",
        "(`INFO cpu` just before and after each batch), less the part of those two",
        f"`INFO` calls that falls inside the window ({st['info_call_server_us']} us per",
        "batch, measured on empty windows) and the idle server's own use",
        f"({st['idle_server_us_per_s']:,} us per second). Per operation, in microseconds,",
        "medians over rounds; a ratio is the median of the ratios within each round.",
        "",
        "| Operation | Candidate | CPU | client / server | wall | CPU x floor | wall x floor "
        "| `cache` / this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"ro": "read-only load", "rw": "read-modify-write"}
    for op, per in st["ops"].items():
        for name, f in per.items():
            x = st["x_floor"][op].get(name, {"cpu": 1.0, "wall": 1.0})
            vs = st["cache_over_charon"][op]
            versus = f"{vs['cpu']:.2f} CPU, {vs['wall']:.2f} wall" if name == "charon" else "-"
            lines.append(
                f"| {names[op]} | {LABELS[name]} | {_fmt(f['cpu_us'])} us | "
                f"{_fmt(f['client_cpu_us'])} / {_fmt(f['server_cpu_us'])} | "
                f"{_fmt(f['wall_us'])} us | {x['cpu']:.2f} | {x['wall']:.2f} | {versus} |"
            )
    lines += ["", "![Store level](images/bench-store.png)", ""]
    return lines


def _memory_table(r: dict[str, Any]) -> list[str]:
    mem = r["memory"]
    charon, cache = mem["charon"], mem["cache_django_redis"]
    lines = [
        "## Redis memory per session",
        "",
        f"Growth of Redis's `used_memory` over {mem['sessions']:,} sessions created through",
        "each engine's `SessionStore.save()`, from an empty server (`FLUSHALL`) to after",
        "it settled, per session; Redis's default configuration. Everything counts:",
        "values, key names, expiries, the keyspace's dictionaries, and for this engine",
        "the user's index entry and metadata (each signed-in session is another",
        "user's). The keyspace's dictionaries (shown beside the total, from `MEMORY",
        "STATS`) hold an entry per key and per expiry, and bucket arrays that double",
        "as keys are added, so their share moves in steps with the number of keys.",
        "With facts: created with the request facts the metadata middleware stores,",
        "an IP and a 120 character user agent.",
        "",
        "| Session | this engine | of which keyspace | `cache` on django-redis "
        "| of which keyspace | x `cache` | created/s (this / `cache`) |",
        "|---|---|---|---|---|---|---|",
    ]
    titles = {
        "anonymous": "anonymous",
        "signed_in": "signed in",
        "signed_in_facts": "signed in, with request facts",
    }
    for case, title in titles.items():
        mine = charon[case]
        base = cache.get(case)
        theirs = base or cache["signed_in"]
        ratio = mine["bytes_per_session"] / theirs["bytes_per_session"]
        cells = [
            title,
            f"{mine['bytes_per_session']:,.0f} B",
            f"{mine['keyspace_tables_per_session']:,.0f} B",
            f"{base['bytes_per_session']:,.0f} B" if base else "-",
            f"{base['keyspace_tables_per_session']:,.0f} B" if base else "-",
            f"{ratio:.2f}" + ("" if base else " (of signed in)"),
            f"{mine['create_per_second']:,} / "
            + (f"{base['create_per_second']:,}" if base else "-"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![Memory](images/bench-memory.png)", ""]
    return lines


def _user_ops_table(r: dict[str, Any]) -> list[str]:
    ops = r["user_ops"]
    n = r["args"]["user_ops_size"]
    lines = [
        "## A user's sessions",
        "",
        f"Among {n:,} sessions stored: list a user with 1,000 sessions, and end a user",
        "with 10,000. The other engines keep no per-user index, so both mean reading",
        "every session (Redis `SCAN` and `GET`s, or every row decoded).",
        "",
        "Round trips are the writes this process made to Redis (a pipeline is one);",
        "SQL, the queries it ran.",
        "",
        "| Engine | list 1,000 | round trips / SQL | end 10,000 | round trips / SQL |",
        "|---|---|---|---|---|",
    ]
    for name, o in ops.items():
        lines.append(
            f"| {LABELS[name]} | {o['list_1000_ms']:,} ms | "
            f"{o['list_1000_round_trips']:,} / {o['list_1000_sql']:,} | "
            f"{o['end_10000_ms']:,} ms | "
            f"{o['end_10000_round_trips']:,} / {o['end_10000_sql']:,} |"
        )
    return [*lines, ""]


def _cleanup_table(r: dict[str, Any]) -> list[str]:
    c = r["cleanup"]
    return [
        "## Cleanup",
        "",
        "This engine: `sessions_cleanup` removing stale index entries (expired, or",
        "whose session vanished). `db`: `clear_expired()` deleting expired rows. The",
        "`cache` engines need none (Redis TTLs).",
        "",
        "| Engine | removed | per second |",
        "|---|---|---|",
        *[f"| {LABELS[n]} | {v['removed']:,} | {v['per_second']:,} |" for n, v in c.items()],
        "",
    ]


def _e2e_table(r: dict[str, Any]) -> list[str]:
    e = r["e2e"]
    lines = [
        "## End to end: gunicorn and wrk",
        "",
        "gunicorn (2 sync workers) serves the read-modify-write page on loopback; wrk",
        "(1 thread, 8 connections) picks one of 500 signed-in sessions per request.",
        "",
        "| Engine | requests/s | x floor | p50 | p99 |",
        "|---|---|---|---|---|",
    ]
    for name, v in e.items():
        lines.append(
            f"| {LABELS[name]} | {v['rps']:,.0f} | {v['rps'] / e['floor']['rps']:.2f} | "
            f"{v['p50_ms']:.2f} ms | {v['p99_ms']:.2f} ms |"
        )
    lines += ["", "![End to end](images/bench-e2e.png)", ""]
    return lines


def plots(r: dict[str, Any], images: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images.mkdir(parents=True, exist_ok=True)
    written = []

    q = r["requests"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _paired_bars(ax, q, ("read", "read-only"), ("rmw", "read-modify-write"))
    ax.set_ylabel("microseconds per request (lower is better)")
    ax.set_title("A signed-in request through Django, per session engine")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-requests.png"))

    by = r["by_size"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, per in by.items():
        if name == "bare_redis_py" or len(per) < 2:
            continue
        sizes = sorted(per, key=int)
        ax.plot([int(s) for s in sizes], [per[s]["rmw"] for s in sizes], marker="o",
                label=_plain(name))  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sessions stored")
    ax.set_ylabel("read-modify-write, microseconds")
    ax.set_title("Cost of a session save as the store grows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, images / "bench-sizes.png"))

    mem = r["memory"]
    cases = {
        "anonymous": "anonymous",
        "signed_in": "signed in",
        "signed_in_facts": "signed in, with request facts",
    }
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for shift, name in ((-width / 2, "charon"), (width / 2, "cache_django_redis")):
        shown = [(x, c) for x, c in enumerate(cases) if c in mem[name]]
        ax.bar([x + shift for x, _ in shown],
               [mem[name][c]["bytes_per_session"] for _, c in shown], width,
               label=_plain(name))  # fmt: skip
    ax.set_xticks(range(len(cases)), list(cases.values()))
    ax.set_ylabel("bytes of Redis memory per session")
    ax.set_title(f"Redis used_memory per session over {mem['sessions']:,} sessions, same data")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-memory.png"))

    ops = r["store"]["ops"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    cpu = {name: {op: ops[op][name]["cpu_us"] for op in ops} for name in ops["ro"]}
    _paired_bars(ax, cpu, ("ro", "read-only load"), ("rw", "read-modify-write"))
    ax.set_ylabel("CPU microseconds per operation, client + Redis")
    ax.set_title("A signed-in session at store level (lower is better)")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-store.png"))

    if "e2e" in r:
        e = r["e2e"]
        names = list(e)
        fig, ax = plt.subplots(figsize=(9, 4.5))
        ax.bar(range(len(names)), [e[n]["rps"] for n in names])
        ax.set_xticks(range(len(names)), [_plain(n) for n in names], rotation=20, ha="right",
                      fontsize=8)  # fmt: skip
        ax.set_ylabel("requests per second (higher is better)")
        ax.set_title("gunicorn + wrk, read-modify-write page")
        fig.tight_layout()
        written.append(_save(fig, images / "bench-e2e.png"))
    return written


def _paired_bars(
    ax: Any, figures: dict[str, dict[str, Any]], left: tuple[str, str], right: tuple[str, str]
) -> list[float]:
    """Draw two bars per engine (figure key, legend label); return the right bars' x."""
    width = 0.38
    xs = range(len(figures))
    for (key, label), shift in ((left, -width / 2), (right, width / 2)):
        ax.bar([x + shift for x in xs], [f[key] for f in figures.values()], width, label=label)
    ax.set_xticks(list(xs), [_plain(n) for n in figures], rotation=20, ha="right", fontsize=8)
    return [x + width / 2 for x in xs]


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write(results: dict[str, Any], docs: Path) -> list[Path]:
    """Write docs/benchmarks.md and the plots; return the paths written."""
    docs.mkdir(parents=True, exist_ok=True)
    md = docs / "benchmarks.md"
    md.write_text(markdown(results))
    return [md, *plots(results, docs / "images")]


if __name__ == "__main__":
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / "results.json"
    docs = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs"
    results = json.loads(source.read_text())
    print(targets_text(results))
    for path in write(results, docs):
        print(f"wrote {path}")
