#!/usr/bin/python3
"""bench_lowp.py — the Python side of bench/bench_lowp.sh (run with /usr/bin/python3).

Encoding throughput of `easyrec encode --precision fp32|bf16|int8` next to PyTorch's fp32
(eager on length-sorted batches, and its fused nested-tensor path), bf16 (torch.autocast on
CPU) and int8 (torch.ao.quantization.quantize_dynamic on every nn.Linear) paths, in one run,
on the same real profiles and the same random EasyRec-small-shaped weights as
bench/bench_encode.sh (whose data, model and helpers it reuses). Also the agreement of every
low-precision embedding with fp32 (mean / worst cosine) and each process's peak RSS.

Subcommands: run (the whole benchmark), torch (one PyTorch measurement -> JSON line).
"""
import argparse
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench_encode as be  # noqa: E402


def cmd_torch(a):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import make_model as mm
    torch.set_num_threads(a.threads)
    with open(a.ids) as f:
        ids = json.load(f)["ids"]
    enc = be.load_encoder(a.model)
    if a.precision == "int8":
        enc = torch.ao.quantization.quantize_dynamic(enc, {nn.Linear}, dtype=torch.qint8)
    groups = be.batches(ids, a.batch, True)
    tensors = [(g,) + mm.pad_batch([ids[i] for i in g], enc.c.pad) for g in groups]

    def embed(x, mask):
        if a.precision == "bf16":
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                e = enc.pool(enc(x, mask), mask, "easyrec")
            return F.normalize(e.float(), dim=-1)
        return F.normalize(enc.pool(enc(x, mask), mask, "easyrec"), dim=-1)

    out = np.zeros((len(ids), enc.c.hidden), dtype=np.float32)
    with torch.inference_mode():
        embed(*tensors[0][1:])  # warm-up, untimed
        t0 = time.perf_counter()
        for g, x, mask in tensors:
            out[g] = embed(x, mask).numpy()
        dt = time.perf_counter() - t0
    np.save(a.out, out)
    print(json.dumps({"seconds": dt, "torch": torch.__version__}), flush=True)


def cosines(a, b):
    import numpy as np
    c = (a.astype(np.float64) * b.astype(np.float64)).sum(1) / (
        np.linalg.norm(a.astype(np.float64), axis=1) * np.linalg.norm(b.astype(np.float64), axis=1))
    return float(c.mean()), float(c.min())


def cmd_run(a):
    import numpy as np
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    easyrec = os.path.join(ROOT, "build", "easyrec")
    print("== easyrec low-precision encode benchmark ==")
    print(f"host: {os.cpu_count()} CPUs, loadavg at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    isa = be.run_child([easyrec, "--version"])[1].strip().replace("\n", "; ")
    print(f"{isa}")
    texts_path, ids_path, meta = be.prepare_data(out, a.data, a.vocab, a.n, a.seed, a.max_length)
    lens = [len(s) for s in meta["ids"]]
    n = len(lens)
    print(f"input: {n} real profiles (seed {a.seed}), mean {sum(lens) / n:.1f} tokens, max {max(lens)}")
    shape = "easyrec-small"
    rc, so, se, _, _ = be.run_child([sys.executable, os.path.join(HERE, "bench_encode.py"), "model", "--out", out,
                                     "--shape", shape, "--vocab", a.vocab])
    if rc:
        sys.exit(f"building the model failed:\n{se[-3000:]}")
    model = os.path.join(out, "model-" + shape)
    L, C, NH, F_, V, P = be.SHAPES[shape]
    print(f"model: {shape} shape ({L} layers, hidden {C}, FFN {F_}), random fp32 weights (bench_encode's); "
          f"{a.threads} threads; best of {a.rounds} round(s)\n")
    runs = []
    for p in ("fp32", "bf16", "int8"):
        npy = os.path.join(out, f"lowp-easyrec-{p}.npy")
        cmd = [easyrec, "encode", "--model", model, "--input", texts_path, "--output", npy, "--threads",
               str(a.threads), "--max-length", str(a.max_length), "--precision", p]
        runs.append(("easyrec", p, cmd, npy))
    for p in ("fp32", "bf16", "int8"):
        npy = os.path.join(out, f"lowp-torch-{p}.npy")
        cmd = [sys.executable, __file__, "torch", "--model", model, "--ids", ids_path, "--precision", p,
               "--threads", str(a.threads), "--batch", str(a.batch), "--out", npy]
        runs.append(("torch", p, cmd, npy))
    npy = os.path.join(out, "lowp-torch-fused.npy")
    runs.append(("torch-fused", "fp32", [sys.executable, os.path.join(HERE, "bench_encode.py"), "torch", "--model",
                                         model, "--ids", ids_path, "--variant", "fused", "--threads", str(a.threads),
                                         "--batch", str(a.batch), "--out", npy], npy))
    res = {}
    for r in range(a.rounds):  # alternate peers within a round: load changes hit all alike
        for who, p, cmd, npy in runs:
            rc, so, se, wall, rss = be.run_child(cmd)
            if rc:
                sys.exit(f"{' '.join(cmd)} failed:\n{se[-3000:]}")
            if who == "easyrec":
                m = re.search(r"wrote \d+ x \d+ embeddings to .* \(([0-9.]+) s\)", se)
                secs = float(m.group(1))
                mem = re.search(r"weights ([0-9.]+) MiB", se)
                wmib = float(mem.group(1)) if mem else None
            else:
                secs = json.loads(so.strip().splitlines()[-1])["seconds"]
                wmib = None
            key = (who, p)
            best = res.get(key)
            if best is None or secs < best["s"]:
                res[key] = {"s": secs, "rss": rss, "w": wmib, "npy": npy}
            print(f"  round {r + 1}: {who:11s} {p}: {secs:7.2f} s  ({n / secs:6.1f} profiles/s, "
                  f"peak RSS {rss / 2**20:.0f} MiB)", flush=True)
    emb = {k: np.load(v["npy"]) for k, v in res.items()}
    ref = emb[("easyrec", "fp32")]
    tref = emb[("torch", "fp32")]
    ours32 = n / res[("easyrec", "fp32")]["s"]
    print(f"\n| precision | easyrec profiles/s | vs easyrec fp32 | PyTorch same precision | easyrec / PyTorch "
          f"| cosine to fp32 (mean / worst): easyrec | PyTorch | easyrec peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for p in ("fp32", "bf16", "int8"):
        e, t = res[("easyrec", p)], res[("torch", p)]
        ce = cosines(emb[("easyrec", p)], ref)
        ct = cosines(emb[("torch", p)], tref)
        print(f"| {p} | {n / e['s']:.1f} | {n / e['s'] / ours32:.2f}x | {n / t['s']:.1f} | {t['s'] / e['s']:.2f}x "
              f"| {ce[0]:.6f} / {ce[1]:.6f} | {ct[0]:.6f} / {ct[1]:.6f} | {e['rss'] / 2**20:.0f} MiB"
              + (f" (weights {e['w']:.0f} MiB)" if e['w'] else "") + " |")
    fu = res[("torch-fused", "fp32")]
    print(f"\nPyTorch fp32 fused nested-tensor path (its fastest fp32): {n / fu['s']:.1f} profiles/s "
          f"(easyrec fp32 {fu['s'] / res[('easyrec', 'fp32')]['s']:.2f}x, bf16 {fu['s'] / res[('easyrec', 'bf16')]['s']:.2f}x, "
          f"int8 {fu['s'] / res[('easyrec', 'int8')]['s']:.2f}x)")
    print(f"easyrec fp32 vs PyTorch fp32 embeddings: cosine {cosines(ref, tref)[0]:.7f} (the same weights)")
    print(f"easyrec times include its tokenization; PyTorch's do not (pre-tokenized ids)")
    print(f"loadavg at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", default=os.path.join(HERE, "out", "encode"))
    r.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    r.add_argument("--vocab", default=os.path.join(ROOT, "..", "shared", "vocab", "roberta-base"))
    r.add_argument("-n", "--n", type=int, default=256)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-length", type=int, default=512)
    r.add_argument("--batch", type=int, default=128, help="texts per PyTorch batch (default 128)")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--rounds", type=int, default=1)
    t = sub.add_parser("torch")
    t.add_argument("--model", required=True)
    t.add_argument("--ids", required=True)
    t.add_argument("--precision", choices=("fp32", "bf16", "int8"), required=True)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--out", required=True)
    a = ap.parse_args()
    {"run": cmd_run, "torch": cmd_torch}[a.cmd](a)


if __name__ == "__main__":
    main()
