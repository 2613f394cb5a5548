"""Writes bench/RESULTS.md and the SVG charts from one run's figures (bench.py)."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

# Reproducible SVGs: the same figures draw the same file.
plt.rcParams["svg.hashsalt"] = "tessera-bench"
plt.rcParams["svg.fonttype"] = "none"

TESSERA_COLOR, PEER_COLOR = "#1f6feb", "#d1242f"


def num(x, digits=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:,.{digits}f}"


def ms(x):
    if x is None:
        return "—"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def cpu(x):
    if x is None or math.isnan(x):
        return "—"
    return f"{x:.3f}"


def ratio(a, b):
    if not a or not b:
        return "—"
    return f"{a / b:.2f}×"


def cell(result, key):
    return None if result is None else result[key]


def main_table(results):
    lines = [
        "| row | tessera req/s | oidc-provider req/s | tessera/peer | tessera p50 / p99 ms "
        "| peer p50 / p99 ms | tessera peak RSS MiB | peer peak RSS MiB "
        "| tessera CPU s / 1,000 | peer CPU s / 1,000 | errors (t / p) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, row in results["main"].items():
        t, p = row["tessera"], row["peer"]
        lines.append(
            f"| {label} | {num(t['rps'])} | {num(cell(p, 'rps'))} | "
            f"{ratio(t['rps'], cell(p, 'rps'))} | {ms(t['p50_ms'])} / {ms(t['p99_ms'])} | "
            f"{ms(cell(p, 'p50_ms'))} / {ms(cell(p, 'p99_ms'))} | {num(t['rss_mib'], 1)} | "
            f"{num(cell(p, 'rss_mib'), 1)} | {cpu(t['cpu_per_1000'])} | "
            f"{cpu(cell(p, 'cpu_per_1000'))} | {t['errors']} / "
            f"{'—' if p is None else p['errors']} |")
    return "\n".join(lines)


def baseline_table(results):
    b = results.get("baseline")
    if not b:
        return ""
    lines = [
        f"## This build against {b['label']}",
        "",
        f"The rows that write, measured for both builds in this run, alternately (this, "
        f"{b['label']}, this, {b['label']}; each the better of two medians), "
        f"{results['args']['connections']} connections.",
        "",
        "| row | this build req/s | baseline req/s | this / baseline | this p50 / p99 ms "
        "| baseline p50 / p99 ms | this CPU s / 1,000 | baseline CPU s / 1,000 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for label, row in b["rows"].items():
        t, o = row["tessera"], row["baseline"]
        lines.append(
            f"| {label} | {num(t['rps'])} | {num(o['rps'])} | {ratio(t['rps'], o['rps'])} | "
            f"{ms(t['p50_ms'])} / {ms(t['p99_ms'])} | {ms(o['p50_ms'])} / {ms(o['p99_ms'])} | "
            f"{cpu(t['cpu_per_1000'])} | {cpu(o['cpu_per_1000'])} |")
    return "\n".join(lines) + "\n"


def raw_table(results):
    cores = results["machine"]["cores"]
    lines = [
        f"| algorithm | raw signatures/s, one core | × {cores} cores | tessera client_credentials "
        f"req/s | issuance / raw signing |",
        "|---|--:|--:|--:|--:|",
    ]
    for alg, rate in results["raw"].items():
        row = results["main"].get(f"client_credentials {alg}")
        issued = row["tessera"]["rps"] if row else None
        share = f"{100 * issued / (rate * cores):.0f} %" if issued else "—"
        lines.append(f"| {alg} ({'RSA-2048' if alg == 'RS256' else 'P-256' if alg == 'ES256' else 'Ed25519'}) "
                     f"| {num(rate)} | {num(rate * cores)} | {num(issued)} | {share} |")
    return "\n".join(lines)


def targets(results):
    cores = results["machine"]["cores"]
    out = []
    rs = results["main"].get("client_credentials RS256")
    if rs and "RS256" in results["raw"]:
        share = rs["tessera"]["rps"] / (results["raw"]["RS256"] * cores)
        out.append(f"- RS256 issuance at ≥ 85 % of {cores} cores' raw RSA-2048 signing rate: "
                   f"**{100 * share:.0f} %** — {'met' if share >= 0.85 else 'not met'}.")
    for label in ("introspection", "JWKS GET"):
        row = results["main"].get(label)
        if row and row["peer"]:
            r = row["tessera"]["rps"] / row["peer"]["rps"]
            out.append(f"- {label} ≥ 10× the peer: **{r:.1f}×** — {'met' if r >= 10 else 'not met'}.")
    dpop = results.get("dpop")
    if dpop:
        plain = dpop["without a proof"]["rps"]
        for label, r in dpop.items():
            if label == "without a proof":
                continue
            x = r["rps"] / plain
            out.append(f"- client_credentials ES256 {label} ≥ 0.7 of without: **{x:.2f}** — "
                       f"{'met' if x >= 0.7 else 'not met'}.")
    return "\n".join(out)


def _bounds(results):
    """The write rows' CPU bounds: every core at once and one core (× cores), measured just
    before and after the rows (their mean); older runs measured one core only."""
    cores = results["machine"]["cores"]
    wb = results.get("write_bounds")
    if wb:
        return wb["all_cores"], {k: v * cores for k, v in wb["one_core"].items()}
    raw, sealed = results.get("raw", {}), results.get("issuance_bounds", {})
    one = {**{k: v * cores for k, v in raw.items()},
           **{k: v * cores for k, v in sealed.items()}}
    return None, one


def write_limits(results):
    """The physical limits the write rows are read against (same run)."""
    cores = results["machine"]["cores"]
    disk = results.get("disk", {})
    every, one = _bounds(results)
    every = every or {}
    lines = ["| limit | rate | unit |", "|---|--:|---|"]
    lines.append(f"| one writer: 4 KiB written, then `fdatasync` (the data directory's disk) | "
                 f"{num(disk.get('fsync_4k'))} | writes/s; one commit per request could go no "
                 "faster |")
    lines.append("| one writer: one SQLite transaction per session (tessera's schema, WAL, "
                 f"`synchronous = FULL`) | {num(disk.get('sqlite_session_commits'))} | sessions/s "
                 "without group commit |")
    for alg, curve in (("RS256", "RSA-2048"), ("ES256", "P-256")):
        if alg in every:
            lines.append(f"| sessions bound by signing, {alg}: raw {curve} signatures with all "
                         f"{cores} cores signing at once, ÷ 2 | {num(every[alg] / 2)} | sessions/s |")
        if alg in one:
            lines.append(f"| the same from one core's rate × {cores} (no sharing between cores "
                         f"assumed) ÷ 2 | {num(one[alg] / 2)} | sessions/s |" if alg in every else
                         f"| sessions bound by signing, {alg} ({cores} cores' raw {curve} "
                         f"signatures ÷ 2) | {num(one[alg] / 2)} | sessions/s |")
    for fmt in ("jwe", "nested"):
        if fmt in every:
            lines.append(f"| {fmt} issuance bound by CPU: criterion `issuance_parallel/RS256/{fmt}`"
                         f" (sign + seal, no HTTP, no store), all {cores} cores at once | "
                         f"{num(every[fmt])} | tokens/s |")
        if fmt in one:
            lines.append(f"| the same from one core (`issuance/RS256/{fmt}`) × {cores} | "
                         f"{num(one[fmt])} | tokens/s |" if fmt in every else
                         f"| {fmt} issuance bound by CPU ({cores} cores × criterion "
                         f"`issuance/RS256/{fmt}`) | {num(one[fmt])} | tokens/s |")
    return "\n".join(lines)


def _write_rows(results):
    """(label, result, bound label, bound) for every write row, refresh included."""
    every, one = _bounds(results)
    bound = every or one
    kind = "every core at once" if every else "one core × cores"
    out = []
    for label, r in results.get("writes", {}).items():
        if label.startswith("sessions, RS256"):
            out.append((label, r, f"RS256 signing bound ({kind})", bound.get("RS256", 0) / 2))
        elif label.startswith("sessions, ES256"):
            out.append((label, r, f"ES256 signing bound ({kind})", bound.get("ES256", 0) / 2))
        elif "jwe" in label:
            out.append((label, r, f"CPU bound, sign + seal ({kind})", bound.get("jwe", 0)))
        elif "nested" in label:
            out.append((label, r, f"CPU bound, sign + seal ({kind})", bound.get("nested", 0)))
    sizes = results.get("sizes", {})
    first = str(min((int(k.split()[-1]) for k in sizes), default=0))
    refs = results.get("refresh_reference", {})
    cc = results["main"].get("client_credentials RS256", {}).get("tessera")
    for backend in ("SQLite", "PostgreSQL"):
        r = sizes.get(f"{backend} {first}")
        if not r:
            continue
        if backend in refs:
            out.append((f"refresh rotation, {backend} ({int(first):,} families)", r,
                        "client_credentials RS256, runs taken in turn with this row",
                        refs[backend]["rps"]))
        else:
            out.append((f"refresh rotation, {backend} ({int(first):,} families)", r,
                        "client_credentials RS256, same run", cc["rps"] if cc else None))
    return out


def writes_table(results):
    if not results.get("writes"):
        return "(not measured in this run)"
    lines = ["| row | req/s | p50 / p99 ms | CPU s / 1,000 | writes per commit | against | ratio |",
             "|---|--:|--:|--:|--:|---|--:|"]
    for label, r, against, bound in _write_rows(results):
        per = (f"{r['writes'] / r['commits']:.1f}" if r.get("commits") else "—")
        lines.append(f"| {label} | {num(r['rps'])} | {ms(r['p50_ms'])} / {ms(r['p99_ms'])} | "
                     f"{cpu(r['cpu_per_1000'])} | {per} | {against} | {ratio(r['rps'], bound)} |")
    return "\n".join(lines)


def write_targets(results):
    if not results.get("writes"):
        return ""
    out = []
    rows = {label: (r, bound) for label, r, _, bound in _write_rows(results)}
    disk = results.get("disk", {})

    def verdict(x, target):
        return "met" if x >= target else "not met"

    every, one = _bounds(results)

    def one_core_note(what, rps, per):
        """Against one core's rate × cores as well, where every core was measured."""
        if not every or not one.get(what):
            return ""
        return f" (against one core's rate × cores: {rps / (one[what] / per):.2f})"

    es = rows.get("sessions, ES256 keys, SQLite")
    if es and disk.get("fsync_4k"):
        x = es[0]["rps"] / disk["fsync_4k"]
        line = (f"- Sessions with ES256 keys on SQLite ≥ 1.5× the single-writer `write + fdatasync` "
                f"rate: **{x:.2f}×** — {verdict(x, 1.5)}")
        if disk.get("sqlite_session_commits"):
            y = es[0]["rps"] / disk["sqlite_session_commits"]
            line += (f" (against one SQLite transaction per session on the same disk: "
                     f"**{y:.2f}×**)")
        out.append(line + ".")
    rs = rows.get("sessions, RS256 keys, SQLite")
    if rs and rs[1]:
        x = rs[0]["rps"] / rs[1]
        out.append(f"- Sessions with RS256 keys on SQLite ≥ 0.8 of the signing bound: **{x:.2f}** "
                   f"— {verdict(x, 0.8)}" + one_core_note("RS256", rs[0]["rps"], 2) + ".")
    conns = results.get("args", {}).get("connections", 64)
    refs = results.get("refresh_reference", {})
    for backend, target in (("SQLite", 0.8), ("PostgreSQL", 0.7)):
        row = next((v for k, v in rows.items() if k.startswith(f"refresh rotation, {backend}")), None)
        if row and row[1]:
            x = row[0]["rps"] / row[1]
            p99 = row[0]["p99_ms"]
            floor = ""
            if backend == "SQLite" and p99 > 25:
                # A closed loop (wrk: each connection sends its next request on the last
                # answer) has a mean latency of connections ÷ rate (Little's law): at or
                # below the reference's rate, that mean alone may exceed the target.
                ref = refs.get(backend, {})
                floor = (f" (at {conns} connections the mean latency is {conns} ÷ rate: "
                         f"{1000 * conns / row[0]['rps']:.1f} ms at this row's rate, "
                         f"{1000 * conns / row[1]:.1f} ms at client_credentials' own"
                         + (f", whose p99 was {ref['p99_ms']:.1f} ms" if ref.get("p99_ms") else "")
                         + f"; a mean, let alone a p99, of 25 ms needs ≥ {1000 * conns / 25:,.0f} req/s)")
            out.append(f"- Refresh rotation on {backend} ≥ {target} of RS256 client_credentials "
                       f"({'runs in turn' if refs else 'same run'}): **{x:.2f}** — {verdict(x, target)}"
                       + (f"; p99 ≤ 25 ms: **{p99:.1f} ms** — {'met' if p99 <= 25 else 'not met'}"
                          + floor if backend == "SQLite" else "") + ".")
    for fmt in ("jwe", "nested"):
        for backend in ("SQLite", "PostgreSQL"):
            row = rows.get(f"issuance, format {fmt}, {backend}")
            if row and row[1]:
                x = row[0]["rps"] / row[1]
                out.append(f"- {fmt} issuance on {backend} ≥ 0.8 of its CPU bound: **{x:.2f}** — "
                           f"{verdict(x, 0.8)}" + one_core_note(fmt, row[0]["rps"], 1) + ".")
    return "\n".join(out)


def dpop_table(results):
    rows = results.get("dpop")
    if not rows:
        return "(not measured in this run)"
    plain = rows["without a proof"]["rps"]
    lines = ["| client_credentials, ES256 tokens | req/s | × without | p50 ms | p99 ms | "
             "CPU s / 1,000 | errors |", "|---|--:|--:|--:|--:|--:|--:|"]
    for label, r in rows.items():
        lines.append(f"| {label} | {num(r['rps'])} | {ratio(r['rps'], plain)} | "
                     f"{ms(r['p50_ms'])} | {ms(r['p99_ms'])} | {cpu(r['cpu_per_1000'])} | "
                     f"{r['errors']} |")
    return "\n".join(lines)


def sweep_table(results):
    conns = None
    lines = []
    for label, row in results["sweep"].items():
        if conns is None:
            conns = list(row["tessera"].keys())
            head = " | ".join(f"{n} conn." for n in conns)
            lines.append(f"| row | server | {head} |")
            lines.append("|---|---|" + "--:|" * len(conns))
        for who, name in (("tessera", "tessera"), ("peer", "oidc-provider")):
            if row[who] is None:
                continue
            cells = " | ".join(f"{num(row[who][n]['rps'])} / {ms(row[who][n]['p99_ms'])}"
                               for n in conns)
            lines.append(f"| {label} | {name} | {cells} |")
    return "\n".join(lines)


def sizes_table(results):
    lines = ["| store | sessions and refresh families | req/s | p50 ms | p99 ms | "
             "CPU s / 1,000 | errors |", "|---|--:|--:|--:|--:|--:|--:|"]
    for key, r in results["sizes"].items():
        store, size = key.rsplit(" ", 1)
        lines.append(f"| {store} | {int(size):,} | {num(r['rps'])} | {ms(r['p50_ms'])} | "
                     f"{ms(r['p99_ms'])} | {cpu(r['cpu_per_1000'])} | {r['errors']} |")
    return "\n".join(lines)


def charts(results, out):
    rows = list(results["sweep"].items())
    for metric, ylabel, fname, log in (("rps", "requests/s", "throughput.svg", False),
                                       ("p99_ms", "p99 latency (ms)", "p99.svg", True)):
        fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.6))
        if len(rows) == 1:
            axes = [axes]
        for ax, (label, row) in zip(axes, rows):
            for who, name, color in (("tessera", "tessera", TESSERA_COLOR),
                                     ("peer", "oidc-provider", PEER_COLOR)):
                if row[who] is None:
                    continue
                xs = [int(n) for n in row[who]]
                ys = [row[who][n][metric] for n in row[who]]
                ax.plot(xs, ys, marker="o", color=color, label=name)
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
            if log:
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("connections")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{ylabel} against connections ({results['machine']['cores']} cores, "
                     f"{results['machine']['cpu']})", fontsize=10)
        fig.tight_layout()
        fig.savefig(Path(out) / "charts" / fname, metadata={"Date": None})
        plt.close(fig)


def write(results, out):
    charts(results, out)
    m, a = results["machine"], results["args"]
    commands = []
    for label, row in results["main"].items():
        commands.append(f"# {label}: tessera")
        commands.append(row["tessera"]["command"])
        if row["peer"]:
            commands.append(f"# {label}: oidc-provider")
            commands.append(row["peer"]["command"])
    pg_note = ("" if results["postgres"] else
               "\nPostgreSQL rows are missing: run `bench/run` (which starts a throw-away "
               "PostgreSQL) rather than bench.py alone.\n")
    text = f"""# Service benchmark results

Generated by `bench/run` on {m['date']} — do not edit by hand; run it again
(`bench/README.md` says how and what each figure means).

**Machine:** {m['cores']} cores, {m['cpu']}, {m['memory']}, Linux {m['kernel']}.
tessera {m['commit']} (release build, {m['rustc']}); oidc-provider {m['oidc_provider']} on Node.js
{m['node']}; load from {m['wrk']} on the same machine and cores (2 threads, loopback).

**Run:** `bench/run` — {a['runs']} measured runs of {a['seconds']} s per row after a warm-up,
{a['connections']} connections in the main table; the sweep takes one run per point.
Took {results['seconds_total']} s.

## Side by side ({a['connections']} connections)

Requests/s is the median of {a['runs']} runs, counting only successful (2xx) answers; p50/p99
are the median run's; peak RSS is the server process's high-water mark (VmHWM) over the row;
CPU s / 1,000 is the server process's user+system CPU time per 1,000 answers. "—": the peer
has no such operation (see below).

{main_table(results)}

## The physical limit

Raw signatures per second from the tessera-jose criterion bench (`sign/ALG/aws-lc-raw`: one
aws-lc-rs signature over a token's signing input, no JSON, no HTTP), one core, and that rate
times the cores: what issuance could reach if signing were all it did.

{raw_table(results)}

Targets (reported, not asserted):

{targets(results)}

## Writes: group commit against the disk and the CPU

Every row here waits on a durable write before it answers: SQLite in WAL with
`synchronous = FULL`, PostgreSQL with `fsync` on. Concurrent requests share transactions (and
so fsyncs): "writes per commit" is the mean batch over the row's runs, from the service's
`tessera_store_group_commits_total` and `tessera_store_group_writes_total`. Each row is a fresh
server with that store and signing algorithm, {a['connections']} connections; the refresh rows
are the table-size rows below (1,000 families), each read against RS256 `client_credentials`
whose runs were taken in turn with its own (refresh, client_credentials, refresh, …), so that
a machine that speeds up or slows down moves both alike.

The limits, measured in this run. The CPU bounds come from criterion, with every core at once
(what the machine's cores can do together: on a shared host, two busy cores each run slower
than one alone) and from one core's rate × cores (which assumes they do not); each is the mean
of a measurement just before the write rows and one just after. The ratios below use the
every-core bound.

{write_limits(results)}

{writes_table(results)}

Targets (reported, not asserted):

{write_targets(results)}

## DPoP (RFC 9449): the price of a proof

The same server (ES256 signing keys), {a['connections']} connections: `client_credentials`
without a proof, then with a fresh proof on every request (each made beforehand by
`tessera dpop proof --count`, one client key; accepted once). A proof costs the service one
signature verification, the proof's parsing, and one row in the replay cache (written in
batches shared by concurrent requests: one transaction, one fsync, per batch).

{dpop_table(results)}

{baseline_table(results)}
## Connection sweep

Requests/s / p99 ms at each connection count (one {a['seconds']} s run per point).

{sweep_table(results)}

![throughput against connections](charts/throughput.svg)

![p99 latency against connections](charts/p99.svg)

## Refresh rotation against table size

{a['connections']} connections rotating one refresh family each, in a store that already holds
this many sessions and refresh families (seeded straight into the database before the service
starts). Flat latency across sizes means the lookup is an index probe, not a scan.
{pg_note}
{sizes_table(results)}

## What is compared, and what is not

- **oidc-provider** runs as one Node.js process, the shape of its quick start (spreading it
  over cores with Node's cluster module, and a shared store, is left to the deployer); Node
  runs JavaScript on one core, while tessera's runtime uses every core. The ratio is what a team
  gets from one process of each on the same machine. Its stores are the in-memory development
  adapter (nothing persisted), tessera's are SQLite with `synchronous = FULL` (every refresh
  rotation is on disk before it is answered) — both favour the peer.
- **Introspection:** oidc-provider introspects only the tokens it stores, so its row
  introspects an opaque `client_credentials` token; tessera's introspects its signed JWT
  (signature, lifetime and revocation checked).
- **Sessions, refresh rotation, jwe/nested formats:** oidc-provider issues refresh tokens only
  through the authorization-code flow with a user interaction and has no session-mint API, so
  there is nothing comparable to drive; those rows show tessera alone.
- Both servers log as they do by default; the load generator shares the same cores.

## Exact commands

Each row: `bench/load.lua` driven by these variables (`bench/load.lua` documents them), after
one warm-up run.

```sh
{chr(10).join(commands)}
```
"""
    (Path(out) / "RESULTS.md").write_text(text)


if __name__ == "__main__":
    # Redraw RESULTS.md and the charts from a run's figures, without running
    # it again: python bench/report.py bench/results.json
    import json
    import sys

    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results.json")
    write(json.loads(source.read_text()), source.parent)
