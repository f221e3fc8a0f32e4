#!/usr/bin/python3
"""bench_lowp.py — the Python side of bench/bench_lowp.sh (run with /usr/bin/python3).

Encoding throughput of `easyrec encode --precision fp32|bf16|int8` next to PyTorch's fp32
(eager on length-sorted batches, and its fused nested-tensor path), bf16 (torch.autocast on
CPU) and int8 (torch.ao.quantization.quantize_dynamic on every nn.Linear) paths and ONNX
Runtime's fp32 model and dynamically quantised int8 model (npm onnxruntime-node), in one run,
at the EasyRec-small (6 x 768) and roberta-base (12 x 768) shapes, on the same real profiles
and the same random weights as bench/bench_encode.sh (whose data, models, ONNX export and
helpers it reuses). Also the agreement of every low-precision embedding with the same
implementation's fp32 one (mean / worst cosine) and each process's peak RSS.

The int8 ONNX model is written here, without onnxruntime.quantization (no PyPI on this
machine): every Linear of the encoder and of the EasyRec head is exported through a
torch.autograd.Function whose ONNX symbolic emits the graph ORT's quantize_dynamic writes for
a MatMul + Add —

    DynamicQuantizeLinear(x) -> (xq uint8, x_scale, x_zero_point)     per tensor, asymmetric
    MatMulInteger(xq, Wq int8 (K, N), x_zero_point, W_zero_point int8 (N,) = 0)
    Cast(-> float) ; Mul(·, Mul(x_scale, W_scale (N,))) ; Add(·, bias)

with the weights quantised per output channel, symmetric (W_scale = max|w| / 127, as
quantize_dynamic(per_channel=True) and as easyrec's int8). ORT's graph optimiser fuses each
such group into MatMulIntegerToFloat / DynamicQuantizeMatMul (its int8 MLAS kernels), exactly
as for a model quantised by its own tool. Attention (QK^T, PV), softmax, LayerNorm and GELU
stay fp32, as in easyrec's int8 and quantize_dynamic's default (MatMulConstBOnly).

Subcommands: run (the whole benchmark), torch (one PyTorch measurement -> JSON line),
export-int8 (the int8 ONNX model of a model directory).
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

PRECISIONS = ("fp32", "bf16", "int8")


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


# ---- the int8 ONNX model -------------------------------------------------------------------

def cmd_export_int8(a):
    import torch
    import torch.nn as nn
    enc = be.load_encoder(a.model)

    class QLinearFn(torch.autograd.Function):
        """y = x W^T + b through ORT's dynamic-quantisation pattern (see the module docstring).
        forward only gives the exporter shapes and dtypes: x times the dequantised weights."""

        @staticmethod
        def forward(ctx, x, wq, w_scale, w_zero, bias):
            return torch.matmul(x, wq.float() * w_scale) + bias

        @staticmethod
        def symbolic(g, x, wq, w_scale, w_zero, bias):
            xq, x_scale, x_zero = g.op("DynamicQuantizeLinear", x, outputs=3)
            acc = g.op("MatMulInteger", xq, wq, x_zero, w_zero)
            y = g.op("Mul", g.op("Cast", acc, to_i=1), g.op("Mul", x_scale, w_scale))  # to_i=1: FLOAT
            return g.op("Add", y, bias)

    class QLinear(nn.Module):
        def __init__(self, lin):
            super().__init__()
            w = lin.weight.detach().float()  # (N, K)
            scale = w.abs().amax(dim=1) / 127
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero row: any scale
            q = torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8)
            self.register_buffer("wq", q.t().contiguous())  # (K, N): MatMulInteger's B
            self.register_buffer("w_scale", scale.contiguous())
            self.register_buffer("w_zero", torch.zeros(w.shape[0], dtype=torch.int8))
            self.register_buffer("bias", lin.bias.detach().float().clone())

        def forward(self, x):
            return QLinearFn.apply(x, self.wq, self.w_scale, self.w_zero, self.bias)

    n = 0
    for name in ("q", "k", "v", "o", "f1", "f2"):
        layers = getattr(enc, name)
        for l in range(len(layers)):
            layers[l] = QLinear(layers[l])
            n += 1
    enc.mlp = QLinear(enc.mlp)
    n += 1

    tmp = a.onnx + ".tmp"
    be.export_embedding_onnx(enc, tmp, a.opset)
    with open(tmp, "rb") as f:
        data = f.read()
    for op in (b"DynamicQuantizeLinear", b"MatMulInteger"):  # the pattern really is in the graph
        if data.count(op) < n:
            sys.exit(f"export-int8: {op.decode()} appears {data.count(op)} times, expected >= {n}")
    os.replace(tmp, a.onnx)
    print(json.dumps({"linears": n, "bytes": len(data)}))


# ---- the driver ----------------------------------------------------------------------------

def cosines(a, b):
    import numpy as np
    a, b = a.astype(np.float64), b.astype(np.float64)
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.mean()), float(c.min())


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Run:
    """One measured configuration: who ("easyrec", "PyTorch", "ONNX Runtime"), variant label,
    precision, command, output .npy, parser of the timing."""

    def __init__(self, who, label, precision, cmd, npy, parse, env=None):
        self.who, self.label, self.precision, self.cmd, self.npy, self.parse, self.env = \
            who, label, precision, cmd, npy, parse, env
        self.secs, self.rss, self.wmib = [], 0, None


def parse_easyrec(so, se):
    m = re.search(r"wrote \d+ x \d+ embeddings to .* \(([0-9.]+) s\)", se)
    w = re.search(r"weights ([0-9.]+) MiB", se)
    return float(m.group(1)), float(w.group(1)) if w else None


def parse_json(so, se):
    return json.loads(so.strip().splitlines()[-1])["seconds"], None


def shape_runs(a, shape, out, texts_path, ids_path, easyrec, node_script):
    model = os.path.join(out, "model-" + shape)
    onnx32, onnx8 = os.path.join(out, f"{shape}.onnx"), os.path.join(out, f"{shape}-int8.onnx")
    runs = []
    for p in PRECISIONS:
        runs.append(Run("easyrec", "easyrec", p,
                        [easyrec, "encode", "--model", model, "--input", texts_path, "--threads", str(a.threads),
                         "--max-length", str(a.max_length), "--precision", p, "--output"],
                        os.path.join(out, f"lowp-{shape}-easyrec-{p}.npy"), parse_easyrec))
    env_t = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    for p, label in (("fp32", "PyTorch eager"), ("bf16", "PyTorch autocast"), ("int8", "PyTorch quantize_dynamic")):
        runs.append(Run("PyTorch", label, p,
                        [sys.executable, __file__, "torch", "--model", model, "--ids", ids_path, "--precision", p,
                         "--threads", str(a.threads), "--batch", str(a.batch), "--out"],
                        os.path.join(out, f"lowp-{shape}-torch-{p}.npy"), parse_json, env_t))
    runs.append(Run("PyTorch", "PyTorch fused (nested)", "fp32",
                    [sys.executable, os.path.join(HERE, "bench_encode.py"), "torch", "--model", model, "--ids",
                     ids_path, "--variant", "fused", "--threads", str(a.threads), "--batch", str(a.batch), "--out"],
                    os.path.join(out, f"lowp-{shape}-torch-fused.npy"), parse_json, env_t))
    for p, onnx in (("fp32", onnx32), ("int8", onnx8)):
        runs.append(Run("ONNX Runtime", "onnxruntime-node" + (" (quantised)" if p == "int8" else ""), p,
                        ["node", node_script, onnx, ids_path, str(a.threads), str(a.batch)],
                        os.path.join(out, f"lowp-{shape}-ort-{p}.npy"), parse_json))
    return model, onnx32, onnx8, runs


def cmd_run(a):
    import numpy as np
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    easyrec = os.path.join(ROOT, "build", "easyrec")
    node_script = os.path.join(HERE, "bench_encode_ort.mjs")
    shapes = a.models.split(",")
    for s in shapes:
        if s not in be.SHAPES:
            sys.exit(f"bench_lowp: unknown model shape {s}; known: {','.join(be.SHAPES)}")
    print("== easyrec low-precision encode benchmark ==")
    print(f"host: {os.cpu_count()} CPUs, loadavg at start {load()} (1, 5, 15 min; other processes add noise)")
    print(be.run_child([easyrec, "--version"])[1].strip().replace("\n", "; "))
    tv = be.run_child([sys.executable, "-c", "import torch; print(torch.__version__)"])[1].strip()
    ov = be.run_child(["node", "-e", "console.log(require('onnxruntime-node').env.versions.node)"])[1].strip()
    print(f"PyTorch {tv} (Debian python3-torch); onnxruntime-node {ov or '?'}")
    texts_path, ids_path, meta = be.prepare_data(out, a.data, a.vocab, a.n, a.seed, a.max_length)
    lens = [len(s) for s in meta["ids"]]
    n = len(lens)
    print(f"input: {n} real profiles (seed {a.seed}), mean {sum(lens) / n:.1f} tokens, max {max(lens)}; "
          f"{a.threads} threads; {a.rounds} alternating round(s), best reported; random fp32 weights "
          f"(bench_encode's models)")
    print("timed: easyrec in-process tokenize + forward + .npy write (after model load and conversion); "
          "PyTorch and ORT forward only on pre-tokenized ids (sorted batches of %d)" % a.batch)
    summary = []
    for shape in shapes:
        L, C, NH, F_, V, P = be.SHAPES[shape]
        rc, so, se, _, _ = be.run_child([sys.executable, os.path.join(HERE, "bench_encode.py"), "model", "--out", out,
                                         "--shape", shape, "--vocab", a.vocab])
        if rc:
            sys.exit(f"building the {shape} model failed:\n{se[-3000:]}")
        model, onnx32, onnx8, runs = shape_runs(a, shape, out, texts_path, ids_path, easyrec, node_script)
        for path, cmd in ((onnx32, [sys.executable, os.path.join(HERE, "bench_encode.py"), "export", "--model", model,
                                    "--onnx", onnx32]),
                          (onnx8, [sys.executable, __file__, "export-int8", "--model", model, "--onnx", onnx8])):
            if not os.path.exists(path):
                be.log(f"bench_lowp: exporting {path}")
                rc, so, se, _, _ = be.run_child(cmd)
                if rc:
                    sys.exit(f"ONNX export of {path} failed:\n{se[-3000:]}")
        print(f"\n== {shape}: {L} layers, hidden {C}, FFN {F_}; loadavg {load()} ==")
        rc, so, se, _, _ = be.run_child(["node", node_script, "--ops", onnx8])
        if rc:
            sys.exit(f"onnxruntime-node cannot run {onnx8}:\n{se[-3000:]}")
        ops = json.loads(so.strip().splitlines()[-1])
        q8 = ops.get("DynamicQuantizeMatMul", 0) + ops.get("MatMulIntegerToFloat", 0)
        print(f"ORT int8 model after ORT's graph optimisation: {ops.get('DynamicQuantizeMatMul', 0)} "
              f"DynamicQuantizeMatMul + {ops.get('MatMulIntegerToFloat', 0)} MatMulIntegerToFloat (int8 kernels) "
              f"for the {6 * L + 1} Linears; float MatMul/FusedMatMul {ops.get('MatMul', 0) + ops.get('FusedMatMul', 0)} "
              f"(attention)")
        if q8 != 6 * L + 1:
            sys.exit(f"bench_lowp: {onnx8}: {q8} int8 MatMul kernels, expected {6 * L + 1}: not a fair int8 peer")
        for r in range(a.rounds):
            order = runs if r % 2 == 0 else runs[::-1]  # alternate: load changes hit every peer alike
            print(f"  round {r + 1}, loadavg {load()}", flush=True)
            for x in order:
                rc, so, se, wall, rss = be.run_child(x.cmd + [x.npy], env=x.env)
                if rc:
                    sys.exit(f"{' '.join(x.cmd)} failed (rc {rc}):\n{so[-2000:]}\n{se[-3000:]}")
                secs, wmib = x.parse(so, se)
                x.secs.append(secs)
                x.rss, x.wmib = max(x.rss, rss), wmib
                print(f"    {x.label:28s} {x.precision}: {secs:7.2f} s  ({n / secs:6.1f} profiles/s, "
                      f"peak RSS {rss / 2**20:.0f} MiB)", flush=True)
        emb = {(x.label, x.precision): np.load(x.npy) for x in runs}
        best = {(x.label, x.precision): n / min(x.secs) for x in runs}
        ours = {p: best[("easyrec", p)] for p in PRECISIONS}
        fp32_of = {"easyrec": ("easyrec", "fp32"), "PyTorch": ("PyTorch eager", "fp32"),
                   "ONNX Runtime": ("onnxruntime-node", "fp32")}
        print(f"\n{shape}, {a.threads} threads, loadavg at the end of its rounds {load()}:\n")
        print("| peer | precision | profiles/s (rounds) | vs easyrec fp32 | easyrec same precision / peer "
              "| cosine to own fp32 (mean / worst) | peak RSS |")
        print("|---|---|---|---|---|---|---|")
        for x in runs:
            k = (x.label, x.precision)
            rounds = ", ".join(f"{n / s:.1f}" for s in x.secs)
            rel = ours[x.precision] / best[k]
            cos = "1 (reference)" if k == fp32_of[x.who] else "%.6f / %.6f" % cosines(emb[k], emb[fp32_of[x.who]])
            mem = f"{x.rss / 2**20:.0f} MiB" + (f" (weights {x.wmib:.0f} MiB)" if x.wmib else "")
            print(f"| {x.label} | {x.precision} | {best[k]:.1f} ({rounds}) | {best[k] / ours['fp32']:.2f}x "
                  f"| {'—' if x.who == 'easyrec' else f'{rel:.2f}x'} | {cos} | {mem} |")
        print("\nfp32 agreement (same weights): easyrec vs PyTorch eager cosine %.7f / worst %.7f; "
              "easyrec vs ORT %.7f / %.7f" % (cosines(emb[("easyrec", "fp32")], emb[("PyTorch eager", "fp32")])
                                             + cosines(emb[("easyrec", "fp32")], emb[("onnxruntime-node", "fp32")])))
        peer16 = best[("PyTorch autocast", "bf16")]
        peer8 = max(best[("PyTorch quantize_dynamic", "int8")], best[("onnxruntime-node (quantised)", "int8")])
        summary.append((shape, ours, peer16, peer8))
    print("\ngoals of issue 15 (best rounds): bf16 >= 1.7x and int8 >= 2.5x easyrec fp32, each ahead of the "
          "peers' same-precision paths (ONNX Runtime has no bf16 CPU path for this model)")
    for shape, ours, peer16, peer8 in summary:
        r16, r8 = ours["bf16"] / ours["fp32"], ours["int8"] / ours["fp32"]
        print(f"  {shape}: bf16 {r16:.2f}x fp32 ({'met' if r16 >= 1.7 else 'NOT met'}), {ours['bf16'] / peer16:.2f}x "
              f"PyTorch bf16; int8 {r8:.2f}x fp32 ({'met' if r8 >= 2.5 else 'NOT met'}), {ours['int8'] / peer8:.2f}x "
              f"the faster int8 peer")
    print(f"loadavg at end {load()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", default=os.path.join(HERE, "out", "encode"))
    r.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    r.add_argument("--vocab", default=os.path.join(ROOT, "..", "shared", "vocab", "roberta-base"))
    r.add_argument("--models", default="easyrec-small,roberta-base", help="shapes, comma-separated")
    r.add_argument("-n", "--n", type=int, default=256)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-length", type=int, default=512)
    r.add_argument("--batch", type=int, default=128, help="texts per PyTorch / ORT batch (default 128)")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--rounds", type=int, default=1)
    t = sub.add_parser("torch")
    t.add_argument("--model", required=True)
    t.add_argument("--ids", required=True)
    t.add_argument("--precision", choices=PRECISIONS, required=True)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--out", required=True)
    e = sub.add_parser("export-int8")
    e.add_argument("--model", required=True)
    e.add_argument("--onnx", required=True)
    e.add_argument("--opset", type=int, default=14)
    a = ap.parse_args()
    {"run": cmd_run, "torch": cmd_torch, "export-int8": cmd_export_int8}[a.cmd](a)


if __name__ == "__main__":
    main()
