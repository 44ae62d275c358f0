"""Retry rate and throughput of the reliable host link (protocol version 2) against the bit error rate.

    python benchmarks/link_ber.py [--programs 40] [--baud 115200] [--out docs/results]

Each program is a small int8 GEMM on `system-default`'s sparse-chain engine (CLEAR, WRITE/RUN/READ chunks,
COUNTERS, STATUS: 31 command and data words of 256 bits out, 12 reply words back) run through `LinkHost` against
the board's reference model (`BridgeModel` around the golden system) over a bit-level 8N1 line with independent
bit flips in both directions, plus one row with lost and doubled bytes and board resets. Counts every program as
correct (replies equal the golden system's), stopped (LinkError) or wrong; wrong must be 0. Throughput: payload
words delivered per second at `--baud` (10 line bits per byte, both directions share the time: stop-and-wait),
and the line efficiency (payload bits / line bits). Writes link_ber.json and link_ber.md."""
import argparse
import json
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hwgen.host.system_backend import SystemBackend
from sw_model.host import link
from sw_model.registry import PRESETS
from sw_model.sparse.golden import pack_gemm
from sw_model.system.golden import GoldenStream, GoldenSystem

ROOT = Path(__file__).resolve().parent.parent
RATES = [0.0, 1e-6, 1e-5, 1e-4, 1e-3]


def programs(backend, n):
    chain = PRESETS["sparse-chain-8"]
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        beats = pack_gemm(rng.integers(-127, 128, (3, 16)), rng.integers(-128, 128, (16, 2)), "dense",
                          chain.stages, chain.x_width, weight_bits=chain.weight_bits)
        p, _ = backend.program(chain, beats)
        out.append((p.words, [w or 0 for w in GoldenSystem(backend.manifest).execute(p.words)], p.reply_words()))
    return out


def measure(manifest, progs, ber, drop=0.0, dup=0.0, resets=False, seed=1):
    width = manifest["system"]["host_width"] // 8
    row = {"ber": ber, "drop": drop, "dup": dup, "resets": resets, "programs": len(progs), "correct": 0,
           "stopped": 0, "wrong": 0, "requests": 0, "sent": 0, "retries": 0, "restarts": 0, "line_bits": 0,
           "payload_words": 0}
    rng = random.Random(seed)
    for k, (words, want, n) in enumerate(progs):
        bridge = link.BridgeModel(GoldenStream(manifest), width, width)
        port = link.ModelPort(bridge, link.LineFaults(ber, drop, dup, random.Random(rng.random())),
                              link.LineFaults(ber, drop, dup, random.Random(rng.random())),
                              {10 + 7 * (k % 5)} if resets else set())
        hosts = []

        def make_host():
            hosts.append(link.LinkHost(port, width, width, rng=rng))
            return hosts[-1]
        try:
            got, restarts = link.run_program(make_host, words, n)
            row["restarts"] += restarts
            row["correct" if got == want else "wrong"] += 1
            row["payload_words"] += len(words) + n
        except link.LinkError:
            row["stopped"] += 1
        for h in hosts:
            for key in ("requests", "sent", "retries"):
                row[key] += h.stats[key]
        row["line_bits"] += port.bits
    row["retry_rate"] = row["retries"] / max(1, row["requests"])
    row["efficiency"] = row["payload_words"] * 8 * width / max(1, row["line_bits"])
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=40)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args()
    backend = SystemBackend("system-default", "golden")
    progs = programs(backend, args.programs)
    rows = [measure(backend.manifest, progs, ber) for ber in RATES]
    rows.append(measure(backend.manifest, progs, 1e-4, 1e-3, 1e-3, resets=True))
    for r in rows:
        r["words_per_s"] = args.baud * r["efficiency"] / (8 * backend.manifest["system"]["host_width"] // 8)
    cmd = f"python benchmarks/link_ber.py --programs {args.programs} --baud {args.baud}"
    result = {"command": cmd, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "system": "system-default", "baud": args.baud, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "link_ber.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Host link: retries and throughput against the bit error rate", "",
             f"`{cmd}` ({result['date']}). {args.programs} programs per row (int8 GEMM on system-default's "
             "sparse-chain engine, 256-bit words) through `LinkHost` and the board's reference model over a "
             "bit-level 8N1 line; errors in both directions. Throughput: 256-bit payload words per second at "
             f"{args.baud} baud, stop-and-wait.", "",
             "| bit error rate | lost / doubled bytes | board resets | correct | stopped | wrong | retries per "
             "request | restarts | line efficiency | words/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['ber']:g} | {r['drop']:g} / {r['dup']:g} | {'yes' if r['resets'] else 'no'} | "
                     f"{r['correct']} | {r['stopped']} | {r['wrong']} | {r['retry_rate']:.4f} | {r['restarts']} | "
                     f"{100 * r['efficiency']:.1f} % | {r['words_per_s']:.1f} |")
    (args.out / "link_ber.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
