#!/usr/bin/env python3
"""A/B of two tessera binaries on the main rows, in one run on one machine.

    python3 bench/ab.py --old /path/to/old/tessera --new target/release/tessera

Runs client_credentials (RS256, ES256) and introspection of a client_credentials
token (RS256) against each binary in turn, `--rounds` times with the order
alternating, each measurement as bench.py takes them (wrk, bench/load.lua, 64
connections), and prints each row's median req/s per binary and the ratio new/old.
A change that must not cost throughput is checked with this before the full
bench/run (which compares tessera with oidc-provider, not two tesseras).
"""

import argparse
import statistics
import tempfile
from pathlib import Path

import bench


class Binary(bench.Tessera):
    """bench.Tessera on a given binary; `clients create` without the options an
    older binary does not know."""

    exe = None

    def start(self):
        saved = bench.TESSERA
        bench.TESSERA = Path(self.exe).resolve()
        real_run = bench.run

        def run(argv, **kw):
            try:
                return real_run(argv, **kw)
            except bench.BenchError:
                if "--audience" not in argv:
                    raise
                i = argv.index("--audience")
                return real_run(argv[:i] + argv[i + 2:], **kw)

        bench.run = run
        try:
            return super().start()
        finally:
            bench.run = real_run
            bench.TESSERA = saved


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rows", default="cc-rs256,cc-es256,introspection",
                    help="which rows, comma-separated: cc-rs256, cc-es256, introspection")
    args = ap.parse_args()
    measure_args = argparse.Namespace(seconds=args.seconds, runs=1)
    known = {"cc-rs256": ("client_credentials RS256", "RS256", bench.cc_load),
             "cc-es256": ("client_credentials ES256", "ES256", bench.cc_load),
             "introspection": ("introspection (RS256 token)", "RS256", bench.introspect_load)}
    rows = [known[name] for name in args.rows.split(",")]
    results = {(row, side): [] for row, _, _ in rows for side in ("old", "new")}
    base = Path(tempfile.mkdtemp(prefix="tessera-ab."))
    n = 0
    for round_ in range(args.rounds):
        order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
        for row, alg, load in rows:
            for side in order:
                n += 1
                work = base / f"{n:03}-{side}"
                work.mkdir()
                kind = type(f"Binary_{side}", (Binary,), {"exe": getattr(args, side),
                                                          "name": f"tessera-{side}"})
                server = kind(work, alg).start()
                try:
                    r = bench.measure(server, load(server), args.connections, measure_args)
                    if r["errors"]:
                        raise bench.BenchError(f"{row} on {side}: {r['errors']} errors")
                    results[(row, side)].append((r["rps"], r["cpu_per_1000"]))
                finally:
                    server.stop()
    print(f"\n{'row':30} {'old req/s':>10} {'new req/s':>10} {'new/old':>8} "
          f"{'old CPU s/1k':>13} {'new CPU s/1k':>13} {'new/old':>8}   req/s runs")
    for row, _, _ in rows:
        old = statistics.median(x[0] for x in results[(row, "old")])
        new = statistics.median(x[0] for x in results[(row, "new")])
        old_cpu = statistics.median(x[1] for x in results[(row, "old")])
        new_cpu = statistics.median(x[1] for x in results[(row, "new")])
        runs = " ".join(f"{x[0]:.0f}" for x in results[(row, "old")]) + " | " + \
            " ".join(f"{x[0]:.0f}" for x in results[(row, "new")])
        print(f"{row:30} {old:10.0f} {new:10.0f} {new / old:8.3f} {old_cpu:13.4f} "
              f"{new_cpu:13.4f} {new_cpu / old_cpu:8.3f}   {runs}")


if __name__ == "__main__":
    main()
