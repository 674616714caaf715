#!/usr/bin/env python3
"""parlinalg vs numpy on the same ops and sizes, measured in one run, A/B alternated.

Usage (from the project root):
    python3 benches/compare.py [--rounds 3] [--threads 2] [--n 10000000] [--out table.md]

Each round runs benches/numpy_elementwise.py, then `cargo bench --bench elementwise` (criterion,
explicit rayon pool of --threads), and reads criterion's median per bench. Ratios are computed
per round (numpy time / parlinalg time, higher is better for parlinalg) and the table reports
medians over rounds. The `out=` forms are also set against the STREAM-like triad measured in
the same cargo bench run (24 bytes per element for add/mul/..., 16 for unary maps), and each
target of issue 4 against the floor under it, measured in the same run: the fastest read of
one array (reductions) and the cheapest fresh array (new-array forms).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def criterion_median(target, bench, threads):
    path = os.path.join(target, "criterion", "ew", bench, f"t{threads}", "new", "estimates.json")
    with open(path) as fh:
        return json.load(fh)["median"]["point_estimate"]  # ns per iteration


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    env = dict(os.environ, PARLINALG_BENCH_THREADS=str(args.threads), PARLINALG_BENCH_N=str(args.n))
    rounds = []
    loads = []
    for r in range(args.rounds):
        loads.append(open("/proc/loadavg").read().split()[0])
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            subprocess.run([sys.executable, os.path.join(HERE, "numpy_elementwise.py"),
                            "--n", str(args.n), "--repeats", "9", "--json", tmp.name],
                           check=True, stdout=subprocess.DEVNULL)
            numpy = json.load(open(tmp.name))
        subprocess.run(["cargo", "bench", "--bench", "elementwise", "--", "--noplot"],
                       cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = {}
        for row in numpy["rows"]:
            op, dt = row["op"], row["dtype"].replace("float", "f")
            form_new = "red" if row["out_ns"] is None else "new"
            rust_new = criterion_median(target, f"{op}_{form_new}_{dt}", args.threads) / args.n
            rust_into = None
            if row["out_ns"] is not None:
                rust_into = criterion_median(target, f"{op}_into_{dt}", args.threads) / args.n
            yard = {k: criterion_median(target, f"{k}_{dt}", args.threads) / args.n
                    for k in ("triad_into", "read_red", "fresh_new")}
            rows[(op, dt)] = dict(np_new=row["new_ns"], np_out=row["out_ns"], rs_new=rust_new,
                                  rs_into=rust_into, triad=yard["triad_into"],
                                  read=yard["read_red"], fresh=yard["fresh_new"])
        rounds.append(rows)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    def med(key, k, f=lambda v: v):
        vals = [f(rd[key]) for rd in rounds if rd[key][k] is not None]
        return statistics.median(vals) if vals else None

    lines = [
        f"n = {args.n}, parlinalg on {args.threads} threads, numpy as it comes (single-threaded, "
        "except `norm2`: np.linalg.norm goes through BLAS `dot`, which numpy's OpenBLAS runs on "
        "its own threads); "
        f"ns per element (median of {args.rounds} rounds); ratio = numpy / parlinalg, "
        "computed per round, median shown.",
        f"1-minute load average at the start of each round: {', '.join(loads)} "
        f"(the machine is shared; {os.cpu_count()} CPUs).",
        "",
        "| op | dtype | numpy new | parlinalg new | ratio new | numpy out= | parlinalg into "
        "| ratio into | into vs triad bandwidth |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in rounds[0]:
        op, dt = key
        np_new = med(key, "np_new", lambda d: d["np_new"])
        rs_new = med(key, "rs_new", lambda d: d["rs_new"])
        r_new = med(key, "rs_new", lambda d: d["np_new"] / d["rs_new"])
        if rounds[0][key]["np_out"] is not None:
            np_out = med(key, "np_out", lambda d: d["np_out"])
            rs_into = med(key, "rs_into", lambda d: d["rs_into"])
            r_into = med(key, "rs_into", lambda d: d["np_out"] / d["rs_into"])
            # bytes moved per element: unary 2 arrays, binary 3 arrays; the triad moves 3.
            arrays = 3 if op in ("add", "sub", "mul", "div") else 2
            bw = med(key, "rs_into", lambda d: (arrays / 3) * d["triad"] / d["rs_into"])
            cells = f"{np_out:.3f} | {rs_into:.3f} | {r_into:.2f}× | {100 * bw:.0f}%"
        else:
            cells = "— | — | — | —"
        lines.append(f"| {op} | {dt} | {np_new:.3f} | {rs_new:.3f} | {r_new:.2f}× | {cells} |")
    for dt in ("f32", "f64"):
        key = ("add", dt)
        size = 4 if dt == "f32" else 8
        triad = med(key, "triad", lambda d: d["triad"])
        lines.append("")
        lines.append(f"Triad {dt} (a = b + s·c, {args.threads} threads): {triad:.3f} ns/element = "
                     f"{3 * size / triad:.1f} GB/s (STREAM counting, 24 or 12 bytes per element).")
    lines += [
        "",
        f"Floors measured in the same runs ({args.threads} threads, ns per element): **read**, "
        "a plain read of the array (an unordered sum into 32 lanes, no tree): about as fast as "
        "any reduction can read it; **fresh**, a copy of the input into a new "
        "huge-page-advised array, then freed: the cheapest new array made from one input (the "
        "kernel zeroes every fresh page before the first write), under every new-array form.",
        "",
        "| target | dtype | numpy | needs ≤ | floor | parlinalg | measured ratio | "
        "the target is |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = [(op, 2.5, "new") for op in ("exp", "ln", "tanh", "sigmoid")]
    targets += [(op, 2.0, "new") for op in ("add", "mul")] + [("sum", 4.0, "read")]
    for op, want, floor_kind in targets:
        for dt in ("f32", "f64"):
            key = (op, dt)
            np_t = med(key, "np_new", lambda d: d["np_new"])
            floor = med(key, floor_kind if floor_kind == "read" else "fresh",
                        lambda d: d["read"] if floor_kind == "read" else d["fresh"])
            rs = med(key, "rs_new", lambda d: d["rs_new"])
            ratio = med(key, "rs_new", lambda d: d["np_new"] / d["rs_new"])
            needs = np_t / want
            if ratio >= want:
                verdict = "met"
            elif needs < floor:
                verdict = f"below the {'read' if floor_kind == 'read' else 'fresh-array'} floor"
            else:
                verdict = "above the floor, not met"
            lines.append(f"| {op} ≥ {want}× | {dt} | {np_t:.3f} | {needs:.3f} | {floor:.3f} "
                         f"({'read' if floor_kind == 'read' else 'fresh'}) | {rs:.3f} | "
                         f"{ratio:.2f}× | {verdict} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
