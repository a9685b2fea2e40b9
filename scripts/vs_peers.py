#!/usr/bin/env python3
"""sverka against PyTorch and ONNX Runtime on shapes S1-S9, in alternating blocks.

The machine's speed drifts by 10-30% within minutes, so timing each engine for a few
seconds one after the other compares drifts as much as engines. Here each round times a
block of BLOCK seconds of every engine in turn (PyTorch NCHW, PyTorch channels_last,
ONNX Runtime, sverka through `benches/peer_blocks.rs`, the order rotating every round,
a pause after each block: ONNX Runtime's idle threads spin for ~50 ms after a run,
which would take a core from whichever engine comes next);
per engine the figure is the median of its rounds' mean times. The faster peer is the one
with the lower median, and the speed-up the median over rounds of (its block / sverka's
block in the same round), a paired ratio that drift moves much less. (Not the fastest
peer of each round: the least of three noisy times is biased low when the peers are
close.) The ratio of the two medians is printed beside it: when the two disagree, the
two engines' block times spread differently, and neither figure alone settles it.

    /tmp/peers/bin/python scripts/vs_peers.py            # all shapes, 1 and 2 threads
    /tmp/peers/bin/python scripts/vs_peers.py S4 S8 --rounds 16

Needs the peers' virtualenv of ../shared/bench/README.md (numpy, onnx, onnxruntime,
torch) and its peers_bench.py (found in ../../shared/bench from this script, or in
$SVERKA_PEERS_BENCH); builds the bench with cargo. Prints one Markdown row per shape and thread count.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("SVERKA_PEERS_BENCH", os.path.join(HERE, "..", "..", "shared", "bench")))
import peers_bench  # noqa: E402  (shape suite, torch cases, ORT models)


def block(fn, secs):
    """Mean ms a call of `fn` over at least `secs` seconds."""
    start, calls = time.perf_counter(), 0
    while calls == 0 or time.perf_counter() - start < secs:
        fn()
        calls += 1
    return (time.perf_counter() - start) * 1e3 / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="*", default=[f"S{i}" for i in range(1, 10)])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=12, help="a multiple of 4 puts each engine equally often after each other one")
    ap.add_argument("--block", type=float, default=0.25, help="seconds per engine per round")
    ap.add_argument("--settle", type=float, default=0.1,
                    help="idle seconds after each block (ONNX Runtime's threads spin ~50 ms after a run)")
    a = ap.parse_args()

    import torch
    import onnxruntime  # noqa: F401

    torch.set_num_interop_threads(1)
    subprocess.run(["cargo", "bench", "--bench", "peer_blocks", "--no-run"], check=True, cwd=os.path.join(HERE, ".."),
                   stderr=subprocess.DEVNULL)
    print("| id | threads | sverka ms | PyTorch NCHW ms | PyTorch channels_last ms | ORT ms "
          "| speed-up vs faster peer (paired median, min-max of rounds) | ratio of medians | plan |")
    print("|---|---|---|---|---|---|---|---|---|")
    known = {x["id"]: x for x in peers_bench.SHAPES if x["op"] == "conv"}
    unknown = [sid for sid in a.shapes if sid not in known]
    if unknown:
        sys.exit(f"unknown shape id(s) {unknown}; known: {sorted(known)}")
    for sid in a.shapes:
        s = known[sid]
        proc = subprocess.Popen(["cargo", "bench", "--bench", "peer_blocks", "--", sid], cwd=os.path.join(HERE, ".."),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        plan = proc.stdout.readline().strip().removeprefix("READY ")

        def sverka(threads, secs):
            proc.stdin.write(f"{threads} {secs}\n")
            proc.stdin.flush()
            return float(proc.stdout.readline())

        for threads in [int(t) for t in a.threads.split(",")]:
            torch.set_num_threads(threads)
            with torch.no_grad():
                tc = peers_bench.torch_cases(s, threads)
            tc.pop("_backend", None)
            engines = {
                "torch nchw": tc["nchw"],
                "torch channels_last": tc["channels_last"],
                "ort": peers_bench.ort_callable(*peers_bench.ort_model(s), threads),
                "sverka": lambda: None,
            }
            times = {k: [] for k in engines}
            with torch.no_grad():
                for rnd in range(a.rounds + 1):
                    names = list(engines)
                    names = names[rnd % len(names):] + names[:rnd % len(names)]
                    got = {}
                    for name in names:
                        got[name] = sverka(threads, a.block) if name == "sverka" else block(engines[name], a.block)
                        time.sleep(a.settle)
                    if rnd == 0:
                        continue  # warm-up round
                    for k, v in got.items():
                        times[k].append(v)
            med = {k: statistics.median(v) for k, v in times.items()}
            faster = min(("torch nchw", "torch channels_last", "ort"), key=lambda k: med[k])
            ratios = [p / q for p, q in zip(times[faster], times["sverka"])]
            print(f"| {sid} | {threads} | {med['sverka']:.3f} | {med['torch nchw']:.3f} | {med['torch channels_last']:.3f} | "
                  f"{med['ort']:.3f} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}; "
                  f"{faster}) | {med[faster] / med['sverka']:.2f}x | `{plan}` |", flush=True)
        proc.stdin.close()
        proc.wait()


if __name__ == "__main__":
    main()
