#!/usr/bin/python3
"""bench_encode.py — the Python side of bench/bench_encode.sh (run with /usr/bin/python3).

Encoding throughput of easyrec against PyTorch (HF-style eager layers and the fused
nn.TransformerEncoderLayer path) and ONNX Runtime (onnxruntime-node), on real profile texts,
with random models of roberta-base shape and EasyRec-small shape; see bench/README.md.

Subcommands (bench_encode.sh calls `run`; the others are the pieces it runs, one process
per measurement so that each peer's peak RSS is its own):
  run        the whole benchmark: data, models, ONNX export, exactness checks, timed rounds,
             the table
  torch      one PyTorch measurement (eager | eager-sorted | fused | fused-padded) -> JSON line
  model      build a random model directory (cached)
  export     ONNX export of a model directory
"""
import argparse
import json
import math
import os
import random
import re
import resource
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

SHAPES = {  # name: (layers, hidden, heads, ffn, vocab, max_pos)
    "roberta-base": (12, 768, 12, 3072, 50265, 514),
    "easyrec-small": (6, 768, 12, 3072, 50265, 514),
}
MODEL_SEED = {"roberta-base": 12, "easyrec-small": 6}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- data --------------------------------------------------------------------------------

def profile_files(data_dir):
    out = []
    for d, _, files in os.walk(data_dir):
        for f in files:
            if re.search(r"_profile.*\.json$", f):
                out.append(os.path.join(d, f))
    return sorted(out)


def read_profiles(data_dir):
    texts = []
    for p in profile_files(data_dir):
        with open(p, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                obj = json.loads(line)
                if isinstance(obj.get("profile"), str):
                    texts.append(obj["profile"])
    return texts


def prepare_data(out_dir, data_dir, vocab_dir, n, seed, max_length):
    """Deterministic sample of n profiles -> texts.jsonl (JSON lines {"profile": ...}, in
    sample order) and ids.json (RoBERTa ids by tools/hf_slow_tokenizers.py, a port of HF's
    slow tokenizer independent of easyrec's C tokenizer). Cached by (n, seed, max_length)."""
    tag = f"n{n}-s{seed}-L{max_length}"
    d = os.path.join(out_dir, "data-" + tag)
    texts_path, ids_path = os.path.join(d, "texts.jsonl"), os.path.join(d, "ids.json")
    if os.path.exists(ids_path):
        with open(ids_path) as f:
            meta = json.load(f)
        return texts_path, ids_path, meta
    os.makedirs(d, exist_ok=True)
    all_texts = read_profiles(data_dir)
    if not all_texts:
        sys.exit(f"bench_encode: no profiles found under {data_dir}")
    rng = random.Random(seed)
    idx = rng.sample(range(len(all_texts)), min(n, len(all_texts)))
    texts = [all_texts[i] for i in idx]
    from hf_slow_tokenizers import RobertaSlow
    tok = RobertaSlow(os.path.join(vocab_dir, "vocab.json"), os.path.join(vocab_dir, "merges.txt"))
    t0 = time.perf_counter()
    ids = [tok.encode(t, max_length=max_length) for t in texts]
    tok_s = time.perf_counter() - t0
    with open(texts_path + ".tmp", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"profile": t}, ensure_ascii=False) + "\n")
    os.replace(texts_path + ".tmp", texts_path)
    meta = {"n_pool": len(all_texts), "n_files": len(profile_files(data_dir)), "seed": seed,
            "max_length": max_length, "python_tokenizer_s": tok_s, "ids": ids}
    with open(ids_path + ".tmp", "w") as f:
        json.dump(meta, f)
    os.replace(ids_path + ".tmp", ids_path)
    return texts_path, ids_path, meta


def pool_lengths(out_dir, data_dir, vocab_dir, k, seed, max_length):
    """Token lengths of a larger sample (k texts, another seed) to show that the timed sample
    has the corpus's length mix; cached."""
    path = os.path.join(out_dir, f"lengths-k{k}-s{seed}-L{max_length}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    texts = read_profiles(data_dir)
    idx = random.Random(seed).sample(range(len(texts)), min(k, len(texts)))
    from hf_slow_tokenizers import RobertaSlow
    tok = RobertaSlow(os.path.join(vocab_dir, "vocab.json"), os.path.join(vocab_dir, "merges.txt"))
    lens = [len(tok.encode(texts[i], max_length=max_length)) for i in idx]
    with open(path, "w") as f:
        json.dump(lens, f)
    return lens


def pct(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(math.ceil(q / 100 * len(s))) - 1)]


# ---- models ------------------------------------------------------------------------------

def read_safetensors(path):
    """name -> fp32 torch tensor (F32 files only, as bench models are)."""
    import torch
    out = {}
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        base = 8 + hlen
        for name, h in header.items():
            if name == "__metadata__":
                continue
            if h["dtype"] != "F32":
                raise SystemExit(f"{path}: {name}: dtype {h['dtype']} (bench expects F32)")
            a, b = h["data_offsets"]
            f.seek(base + a)
            buf = bytearray(f.read(b - a))
            out[name] = torch.frombuffer(buf, dtype=torch.float32).view(h["shape"]) if h["shape"] else \
                torch.frombuffer(buf, dtype=torch.float32).view(())
    return out


def build_model(out_dir, shape, vocab_dir):
    """Random fp32 model of the named shape (fixed seed) in HF layout, with the real
    roberta-base vocab files; cached."""
    d = os.path.join(out_dir, "model-" + shape)
    if os.path.exists(os.path.join(d, "model.safetensors")) and os.path.exists(os.path.join(d, ".done")):
        return d
    import torch
    import make_model as mm
    L, H, A, F, V, P = SHAPES[shape]
    log(f"bench_encode: building random {shape} model in {d}")
    torch.manual_seed(0)
    enc = mm.Encoder(mm.Cfg("roberta", layers=L, hidden=H, heads=A, ffn=F, vocab=V, max_pos=P))
    enc.randomize(torch.Generator().manual_seed(MODEL_SEED[shape]))
    for fn in ("vocab.json", "merges.txt"):  # copies of read-only files: keep them rewritable
        if os.path.exists(os.path.join(d, fn)):
            os.chmod(os.path.join(d, fn), 0o644)
    mm.save_model(enc, d, fmt="safetensors", dtype=torch.float32, vocab_dir=vocab_dir, lm_head=False)
    for fn in ("vocab.json", "merges.txt"):
        os.chmod(os.path.join(d, fn), 0o644)
    open(os.path.join(d, ".done"), "w").close()
    return d


def load_encoder(model_dir):
    """make_model.Encoder with the weights of model_dir/model.safetensors. The vocab-sized
    tables not used by encoding (MLM decoder) are never allocated."""
    import torch
    import torch.nn as nn
    import make_model as mm
    with open(os.path.join(model_dir, "config.json")) as f:
        cj = json.load(f)
    c = mm.Cfg("roberta", layers=cj["num_hidden_layers"], hidden=cj["hidden_size"],
               heads=cj["num_attention_heads"], ffn=cj["intermediate_size"], vocab=1,
               max_pos=cj["max_position_embeddings"], eps=cj["layer_norm_eps"], pad=cj["pad_token_id"])
    enc = mm.Encoder(c)  # vocab=1: tiny word table and lm decoder, replaced/dropped below
    sd = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    c.vocab = cj["vocab_size"]
    enc.word = nn.Embedding(c.vocab, c.hidden, _weight=sd["roberta.embeddings.word_embeddings.weight"])
    enc.lm_decoder = enc.lm_bias = enc.lm_dense = enc.lm_ln = enc.pooler = None
    mine = enc.state_dict_hf(lm_head=False)
    with torch.no_grad():
        for k, p in mine.items():
            if k == "roberta.embeddings.word_embeddings.weight":
                continue
            if sd[k].shape != p.shape:
                raise SystemExit(f"{model_dir}: {k}: shape {tuple(sd[k].shape)} vs {tuple(p.shape)}")
            p.copy_(sd[k])
    del sd
    enc.eval()
    return enc


def fused_stack(enc):
    """nn.TransformerEncoder (fast path: fused kernels + nested tensors) holding enc's layers."""
    import torch
    import torch.nn as nn
    c = enc.c
    layer = nn.TransformerEncoderLayer(c.hidden, c.heads, c.ffn, dropout=0.0, activation="gelu",
                                       layer_norm_eps=c.eps, batch_first=True, norm_first=False)
    stack = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=True)
    with torch.no_grad():
        for l, lay in enumerate(stack.layers):
            lay.self_attn.in_proj_weight.copy_(torch.cat([enc.q[l].weight, enc.k[l].weight, enc.v[l].weight]))
            lay.self_attn.in_proj_bias.copy_(torch.cat([enc.q[l].bias, enc.k[l].bias, enc.v[l].bias]))
            lay.self_attn.out_proj.weight.copy_(enc.o[l].weight)
            lay.self_attn.out_proj.bias.copy_(enc.o[l].bias)
            lay.linear1.weight.copy_(enc.f1[l].weight)
            lay.linear1.bias.copy_(enc.f1[l].bias)
            lay.linear2.weight.copy_(enc.f2[l].weight)
            lay.linear2.bias.copy_(enc.f2[l].bias)
            lay.norm1.weight.copy_(enc.ln1[l].weight)
            lay.norm1.bias.copy_(enc.ln1[l].bias)
            lay.norm2.weight.copy_(enc.ln2[l].weight)
            lay.norm2.bias.copy_(enc.ln2[l].bias)
    # the eager per-layer modules are not needed any more
    for name in ("q", "k", "v", "o", "f1", "f2", "ln1", "ln2"):
        setattr(enc, name, None)
    return stack.eval()


def batches(ids, batch, sort):
    """Index lists of `batch` sequences: input order (as the reference encode_easyrec.py) or
    sorted by length (longest first)."""
    order = list(range(len(ids)))
    if sort:
        order.sort(key=lambda i: -len(ids[i]))
    return [order[i:i + batch] for i in range(0, len(order), batch)]


def cmd_torch(a):
    import numpy as np
    import torch
    import torch.nn.functional as F
    import make_model as mm
    torch.set_num_threads(a.threads)
    with open(a.ids) as f:
        ids = json.load(f)["ids"]
    enc = load_encoder(a.model)
    pad = enc.c.pad
    sort = a.variant != "eager"
    groups = batches(ids, a.batch, sort)
    tensors = [(g,) + mm.pad_batch([ids[i] for i in g], pad) for g in groups]
    if a.variant.startswith("fused"):
        stack = fused_stack(enc)
        stack.enable_nested_tensor = a.variant == "fused"

        def embed(x, mask):
            h = enc.emb_ln(enc.word(x) + enc.typ(torch.zeros_like(x)) + enc.pos(enc.positions(x)))
            h = stack(h, src_key_padding_mask=mask == 0)
            if h.is_nested:
                h = h.to_padded_tensor(0.0)
            return F.normalize(torch.tanh(enc.mlp(h[:, 0])), dim=-1)
    else:
        def embed(x, mask):
            return F.normalize(enc.pool(enc(x, mask), mask, "easyrec"), dim=-1)
    out = np.zeros((len(ids), enc.c.hidden), dtype=np.float32)
    padded = sum(x.shape[0] * x.shape[1] for _, x, _ in tensors)
    with torch.inference_mode():
        embed(*tensors[0][1:])  # warm-up, untimed
        t0 = time.perf_counter()
        for g, x, mask in tensors:
            e = embed(x, mask)
            out[g] = e.numpy()
        dt = time.perf_counter() - t0
    if a.out:
        np.save(a.out, out)
    print(json.dumps({"seconds": dt, "padded_tokens": padded,
                      "real_tokens": sum(len(s) for s in ids), "torch": torch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)


def export_embedding_onnx(enc, path, opset):
    """torch.onnx.export of enc + EasyRec head (tanh(mlp(h[:, 0])), L2-normalised) to `path`:
    inputs input_ids + attention_mask, dynamic batch and sequence axes. Also bench_lowp's int8
    export (its Linears replaced by quantising ones)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Wrap(nn.Module):
        def __init__(self, enc):
            super().__init__()
            self.enc = enc

        def forward(self, input_ids, attention_mask):
            h = self.enc(input_ids, attention_mask)
            return F.normalize(torch.tanh(self.enc.mlp(h[:, 0])), dim=-1)

    w = Wrap(enc).eval()
    ids = torch.tensor([[0, 100, 200, 300, 2], [0, 400, 2, 1, 1]])
    mask = (ids != enc.c.pad).long()
    with torch.no_grad():
        torch.onnx.export(w, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=opset,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"},
                                        "embedding": {0: "batch"}})


def cmd_export(a):
    tmp = a.onnx + ".tmp"
    export_embedding_onnx(load_encoder(a.model), tmp, a.opset)
    os.replace(tmp, a.onnx)


# ---- the driver --------------------------------------------------------------------------

def run_child(cmd, env=None, cwd=ROOT):
    """Run cmd, return (rc, stdout, stderr, wall seconds, max RSS bytes of that command).
    The RSS comes from /usr/bin/time (a small process between us and cmd: a child forked
    straight from this driver would start with the driver's resident pages in its count);
    without it, from wait4's rusage."""
    import tempfile
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
            tempfile.NamedTemporaryFile(mode="r") as ft:
        full = ["/usr/bin/time", "-f", "%M", "-o", ft.name] + cmd if os.path.exists("/usr/bin/time") else cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=fo, stderr=fe, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        rc = os.waitstatus_to_exitcode(status)
        rss = ru.ru_maxrss * 1024
        if full is not cmd:
            m = re.findall(r"^(\d+)$", ft.read(), re.M)
            rss = int(m[-1]) * 1024 if m else rss
        fo.seek(0)
        fe.seek(0)
        return rc, fo.read().decode(errors="replace"), fe.read().decode(errors="replace"), wall, rss


def useful_flops(ids, layers, C, F):
    """Real-token FLOPs of the encoder: per token per layer 2*(4C^2 + 2CF) (the six Linears)
    plus 4*T*C (QK^T and PV over its own sequence of T tokens). The same count for every
    peer, whatever it computes (padding, or easyrec's first-token-only last layer)."""
    per_tok = 2 * (4 * C * C + 2 * C * F)
    return layers * sum(len(s) * per_tok + 4 * len(s) * len(s) * C for s in ids)


def load_npy(path):
    import numpy as np
    return np.load(path)


def maxdiff(a, b):
    import numpy as np
    if a.shape != b.shape:
        return float("inf"), -1
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=1)
    return float(d.max()), int(d.argmax())


def fmt_mb(b):
    return f"{b / 2**20:.0f} MiB"


PEER_KEYS = ("easyrec", "easyrec-blas", "eager", "eager-sorted", "fused", "fused-padded", "ort")
DEFAULT_PEERS = "easyrec,easyrec-blas,eager,fused,fused-padded,ort"


class Peer:
    def __init__(self, name, timed, cmd_fn, parse_fn, env=None):
        self.name, self.timed, self.cmd_fn, self.parse_fn, self.env = name, timed, cmd_fn, parse_fn, env


def cmd_run(a):
    import numpy as np
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    easyrec = os.path.join(ROOT, "build", "easyrec")
    node_script = os.path.join(HERE, "bench_encode_ort.mjs")
    threads_list = [int(x) for x in a.threads.split(",")]
    wanted = set(a.peers.split(",")) | {"eager"}  # torch eager is the exactness reference
    bad = wanted - set(PEER_KEYS)
    if bad:
        sys.exit(f"bench_encode: unknown peer(s) {sorted(bad)}; known: {','.join(PEER_KEYS)}")
    shapes = a.models.split(",")
    print("== easyrec encode benchmark ==")
    print(f"host: {os.cpu_count()} CPUs, loadavg at start {os.getloadavg()[0]:.2f} "
          "(other processes on this machine add noise)")
    for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        print(f"  {v}={os.environ.get(v, '(unset)')}")
    tv = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                        text=True).stdout.strip()
    print(f"torch {tv} (Debian python3-torch), numpy {np.__version__}; max RSS by "
          f"{'/usr/bin/time' if os.path.exists('/usr/bin/time') else 'wait4 rusage'}")
    ort_ver = subprocess.run(["node", "-e", "console.log(require('onnxruntime-node').env.versions.node)"],
                             cwd=ROOT, capture_output=True, text=True).stdout.strip() or "?"
    print(f"onnxruntime-node {ort_ver}, node {subprocess.run(['node', '-v'], capture_output=True, text=True).stdout.strip()}")

    texts_path, ids_path, meta = prepare_data(out, a.data, a.vocab, a.n, a.seed, a.max_length)
    ids = meta["ids"]
    lens = [len(s) for s in ids]
    n = len(ids)
    print(f"\ninput: {n} profiles sampled (seed {a.seed}) from {meta['n_pool']} in {meta['n_files']} "
          f"profile files under {a.data}")
    print(f"  tokens per profile incl. <s> </s> (max_length {a.max_length}): mean {statistics.mean(lens):.1f}, "
          f"median {pct(lens, 50)}, p90 {pct(lens, 90)}, p99 {pct(lens, 99)}, max {max(lens)}; total {sum(lens)}")
    big = pool_lengths(out, a.data, a.vocab, 10000, a.seed + 1, a.max_length)
    print(f"  (a larger sample of {len(big)} profiles: mean {statistics.mean(big):.1f}, median {pct(big, 50)}, "
          f"p90 {pct(big, 90)}, p99 {pct(big, 99)}, max {max(big)})")
    for sort, label in ((False, "input order (reference)"), (True, "length-sorted")):
        pad_tok = sum(len(g) * max(lens[i] for i in g) for g in batches(ids, a.batch, sort))
        print(f"  batches of {a.batch}, {label}: {pad_tok} padded tokens, "
              f"{100 * (1 - sum(lens) / pad_tok):.1f}% of the work is padding")

    sg = os.path.join(out, "bench_encode_sgemm")
    peaks = {}

    def measure_peaks(when):
        """OpenBLAS / easyrec GEMM peaks; keeps the best seen so far (the machine is shared)."""
        print(f"\nGEMM peaks {when}, C(2048x3072) = A(2048x768) B^T, best of repeated calls (GFLOP/s):")
        for t in threads_list:
            rc, so, se, _, _ = run_child([sg, "2048", "3072", "768", str(t), "2"])
            if rc:
                sys.exit(f"{sg} failed:\n{se}")
            for line in so.splitlines():
                k, _, _, _, _, g = line.split()
                v = float(g) if g != "n/a" else None
                if v is not None and v > (peaks.get((k, t)) or 0):
                    peaks[(k, t)] = v
                print(f"  {t} thread(s)  {k:15s} {g:>6s}   (best so far {peaks.get((k, t))})")

    measure_peaks("at start")
    print("  openblas-1call = one cblas_sgemm on N OpenBLAS threads (the 'sgemm peak' of the tables); "
          "*-split = N threads each running a single-threaded GEMM of its own (easyrec's way of threading)")

    summary = []
    for shape in shapes:
        L, C, NH, F, V, P = SHAPES[shape]
        model = os.path.join(out, "model-" + shape)
        rc, so, se, _, _ = run_child([sys.executable, __file__, "model", "--out", out, "--shape", shape,
                                      "--vocab", a.vocab])  # in a child: keeps this driver small
        if rc:
            sys.exit(f"building the {shape} model failed:\n{se[-3000:]}")
        onnx = os.path.join(out, f"{shape}.onnx")
        if not os.path.exists(onnx):
            log(f"bench_encode: exporting {onnx}")
            rc, so, se, _, _ = run_child([sys.executable, __file__, "export", "--model", model, "--onnx", onnx])
            if rc:
                sys.exit(f"ONNX export failed:\n{se[-3000:]}")
        wbytes = os.path.getsize(os.path.join(model, "model.safetensors"))
        flops = useful_flops(ids, L, C, F)
        print(f"\n== {shape}: {L} layers, hidden {C}, {NH} heads, FFN {F}, vocab {V}; random fp32 weights "
              f"{fmt_mb(wbytes)} (model.safetensors, no MLM head); useful work {flops / 1e12:.2f} TFLOP for the "
              f"{n} profiles ({flops / sum(lens) / 1e6:.0f} MFLOP/token) ==")
        res = {}
        for t in threads_list:
            npy = lambda tag: os.path.join(out, f"emb-{shape}-{tag}-t{t}.npy")

            def er_cmd(tag, t=t):
                return [easyrec, "encode", "--model", model, "--input", texts_path, "--output", npy(tag),
                        "--threads", str(t), "--max-length", str(a.max_length)]

            def er_parse(rc, so, se, wall):
                m = re.search(r"wrote \d+ x \d+ embeddings to .* \(([0-9.]+) s\)", se)
                return {"seconds": float(m.group(1)) if m else None, "wall": wall}

            def torch_cmd(variant, t=t):
                return lambda tag: [sys.executable, __file__, "torch", "--model", model, "--ids", ids_path,
                                    "--variant", variant, "--threads", str(t), "--batch", str(a.batch),
                                    "--out", npy(tag)]

            def json_parse(rc, so, se, wall):
                d = json.loads(so.strip().splitlines()[-1])
                d["wall"] = wall
                return d

            env_blas = dict(os.environ, EASYREC_GEMM="blas")
            env_t = dict(os.environ, OMP_NUM_THREADS=str(t))
            timed_er = "in-process time after input read + model load: tokenize + forward + .npy write"
            peers = [
                Peer("easyrec", timed_er, er_cmd, er_parse),
                Peer("easyrec (EASYREC_GEMM=blas)", "same as easyrec, OpenBLAS GEMMs", er_cmd, er_parse, env_blas),
                Peer("torch eager, input order", "forward only (pre-tokenized), batches of %d in input order" % a.batch,
                     torch_cmd("eager"), json_parse, env_t),
                Peer("torch eager, sorted", "forward only, length-sorted batches", torch_cmd("eager-sorted"),
                     json_parse, env_t),
                Peer("torch fused (nested)", "forward only, length-sorted batches, nested tensors",
                     torch_cmd("fused"), json_parse, env_t),
                Peer("torch fused (padded)", "forward only, length-sorted batches, padded",
                     torch_cmd("fused-padded"), json_parse, env_t),
                Peer("onnxruntime-node", "session.run only (pre-tokenized), length-sorted batches",
                     lambda tag, t=t: ["node", node_script, onnx, ids_path, str(t), str(a.batch), npy(tag)],
                     json_parse),
            ]
            keys = dict(zip(PEER_KEYS, peers))
            peers = [keys[k] for k in PEER_KEYS if k in wanted]
            # easyrec's model load: encode one text (wall time of the whole process)
            one = os.path.join(out, "one.jsonl")
            with open(texts_path, encoding="utf-8") as f, open(one, "w", encoding="utf-8") as g:
                g.write(f.readline())
            rc, so, se, load_wall, _ = run_child([easyrec, "encode", "--model", model, "--input", one, "--output",
                                                  os.path.join(out, "one.npy"), "--threads", str(t)])
            if rc:
                sys.exit(f"easyrec encode failed:\n{se}")
            for r in range(a.rounds):
                order = peers if r % 2 == 0 else peers[::-1]
                for p in order:
                    tag = re.sub(r"[^a-z0-9]+", "-", p.name.lower()).strip("-")
                    rc, so, se, wall, rss = run_child(p.cmd_fn(tag), env=p.env)
                    if rc:
                        sys.exit(f"{p.name} failed (rc {rc}):\n{so[-2000:]}\n{se[-3000:]}")
                    d = p.parse_fn(rc, so, se, wall)
                    if d.get("seconds") is None:  # no timing line: whole process minus model load
                        d["seconds"] = wall - load_wall
                    d["rss"], d["npy"] = rss, npy(tag)
                    res.setdefault((p.name, t), []).append(d)
                    log(f"  [{shape} t={t} round {r + 1}] {p.name}: {d['seconds']:.2f} s, {n / d['seconds']:.1f} profiles/s, "
                        f"max RSS {fmt_mb(rss)}")

            measure_peaks(f"after the {shape} rounds")
            # exactness: every peer's embeddings vs torch eager (input order)
            ref = load_npy(npy("torch-eager-input-order"))
            print(f"\nexactness ({t} thread(s)), max |diff| over all {n} x {C} embedding values vs torch eager:")
            for p in peers:
                if p.name == "torch eager, input order":
                    continue
                tag = re.sub(r"[^a-z0-9]+", "-", p.name.lower()).strip("-")
                dmax, row = maxdiff(load_npy(npy(tag)), ref)
                ok = "OK" if dmax <= 1e-4 else "MISMATCH (> 1e-4)"
                print(f"  {p.name:30s} {dmax:.2e}  (worst row {row}, {lens[row]} tokens)  {ok}")

            print(f"\nthroughput, {t} thread(s), {a.rounds} alternating rounds, best round reported "
                  f"(median in brackets); easyrec load {load_wall:.2f} s (1-text encode) not counted")
            peak = peaks.get(("openblas-1call", t))
            hdr = f"| {'peer':30s} | {'profiles/s':>17s} | {'vs easyrec':>10s} | {'useful GFLOP/s':>14s} | " \
                  f"{'% sgemm peak':>12s} | {'max RSS':>9s} | what is timed"
            print(hdr)
            print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|---")
            er_best = min(d["seconds"] for d in res[("easyrec", t)])
            for p in peers:
                runs = res[(p.name, t)]
                best = min(d["seconds"] for d in runs)
                med = statistics.median(d["seconds"] for d in runs)
                rss = max(d["rss"] for d in runs)
                gf = flops / best / 1e9
                pk = f"{100 * gf / peak:.0f}%" if peak else "n/a"
                print(f"| {p.name:30s} | {n / best:7.1f} ({n / med:7.1f}) | {er_best / best:9.2f}x | {gf:14.1f} | "
                      f"{pk:>12s} | {fmt_mb(rss):>9s} | {p.timed}")
                summary.append((shape, t, p.name, n / best, gf, peak, rss, wbytes))
            print(f"sgemm peak ({t} thread(s), OpenBLAS one call, best measured so far): {peak} GFLOP/s; "
                  f"easyrec's own kernel split over {t} thread(s): {peaks.get(('easyrec-split', t))} GFLOP/s; "
                  f"weights {fmt_mb(wbytes)}")
    print("\ngoals of issue 2 (best rounds; >= 1.3x PyTorch's faster path, >= 1.2x ONNX Runtime, "
          ">= 85% of the sgemm peak, RSS <= 1.3x weights + activations):")
    for shape in shapes:
        for t in threads_list:
            rows = {name: (ps, gf, pk, rss, wb) for sh, tt, name, ps, gf, pk, rss, wb in summary
                    if sh == shape and tt == t}
            er = rows.get("easyrec")
            if not er:
                continue
            torch_best = max((v[0], k) for k, v in rows.items() if k.startswith("torch"))
            line = f"  {shape}, {t} thread(s): easyrec {er[0]:.1f} profiles/s = {er[0] / torch_best[0]:.2f}x " \
                   f"{torch_best[1]}"
            if "onnxruntime-node" in rows:
                line += f", {er[0] / rows['onnxruntime-node'][0]:.2f}x onnxruntime-node"
            if er[2]:
                line += f"; {100 * er[1] / er[2]:.0f}% of sgemm peak"
            line += f"; RSS {er[3] / er[4]:.2f}x weights"
            print(line)
    print(f"\nloadavg at end {os.getloadavg()[0]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", default=os.path.join(HERE, "out", "encode"))
    r.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    r.add_argument("--vocab", default=os.path.join(ROOT, "..", "shared", "vocab", "roberta-base"))
    r.add_argument("-n", "--n", type=int, default=256, help="profiles sampled (default 256: two batches of 128)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-length", type=int, default=512)
    r.add_argument("--batch", type=int, default=128, help="texts per batch for torch / ORT (default 128)")
    r.add_argument("--threads", default="2", help="comma-separated thread counts (default 2)")
    r.add_argument("--rounds", type=int, default=2)
    r.add_argument("--models", default="roberta-base,easyrec-small")
    r.add_argument("--peers", default=DEFAULT_PEERS,
                   help=f"comma-separated subset of {','.join(PEER_KEYS)} (default {DEFAULT_PEERS}; "
                   "eager, the exactness reference, always runs)")
    t = sub.add_parser("torch")
    t.add_argument("--model", required=True)
    t.add_argument("--ids", required=True)
    t.add_argument("--variant", choices=("eager", "eager-sorted", "fused", "fused-padded"), required=True)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--out")
    mo = sub.add_parser("model")
    mo.add_argument("--out", required=True)
    mo.add_argument("--shape", choices=sorted(SHAPES), required=True)
    mo.add_argument("--vocab", required=True)
    e = sub.add_parser("export")
    e.add_argument("--model", required=True)
    e.add_argument("--onnx", required=True)
    e.add_argument("--opset", type=int, default=14)
    a = ap.parse_args()
    if a.cmd == "model":
        build_model(a.out, a.shape, a.vocab)
        return
    {"run": cmd_run, "torch": cmd_torch, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    main()
