#!/usr/bin/python3
"""bench_train.py — the Python side of bench/bench_train.sh (run with /usr/bin/python3).

Training throughput of `easyrec train` against PyTorch CPU (Debian python3-torch) doing the same
EasyRec step — batch of 32 (user, positive, negative) triples of real movies profiles, max length
64, InfoNCE (cosine / 0.05 over N x 2N logits) + 0.1 MLM (80/10/10 masking of all three texts),
dropout 0.1, AdamW lr 5e-5 with the linear schedule, global-norm clipping 1.0 — at two shapes.

PyTorch variants (both with the original's four padded encoder passes: users, positives,
negatives, then the 3b interleaved MLM copies u1 p1 n1 u2 ...):
  original     as the original computes it: HF's RobertaLMHead on ALL positions of the MLM pass
               ([3b, T, V] logits), cross-entropy with ignore_index -100
  masked-only  the LM head only on the masked positions (h[labels != -100])

Subcommands (bench_train.sh calls `run`; the others are the pieces it runs, one process per
measurement so that each one's peak RSS is its own):
  run      the whole benchmark: data, models, sgemm peak, alternated timed rounds, the table
  data     sample and tokenize batches -> JSON
  torch    one PyTorch measurement -> one JSON line on stdout

Timing (the same for every implementation): t_k = wall-clock time at the end of step k; the
steady rate skips steps 1..W (warm-up) and is (N - W) * 32 / (t_N - t_W). For easyrec, t_k is the
moment its step-k line appears in OUTPUT/train_log.jsonl (the trainer flushes it right after the
optimizer step; this driver polls the file every 10 ms); the rate derived from the log's
cumulative examples_per_s (t_k - t_start = 32k / rate_k) is printed alongside as a cross-check.
For PyTorch, t_k is time.perf_counter() after optimizer.step() of step k.
"""
import argparse
import json
import math
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

SHAPES = {  # name: (layers, hidden, heads, ffn)
    "small": (2, 256, 4, 1024),
    "easyrec-small": (6, 768, 12, 3072),
}
VOCAB = 50265
BATCH = 32
MAX_LEN = 64
SPECIALS = {0, 1, 2, 3, 50264}  # <s> <pad> </s> <unk> <mask>
MASK_ID, PAD_ID = 50264, 1


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- data --------------------------------------------------------------------------------

def read_profiles(path, key):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                out[int(o[key])] = o["profile"]
    return out


def load_domain(d):
    """Spec §3.1 pools: users = original + diverse 0..2 user profiles (those present), items =
    original + diverse 0..2 (+ raw meta); the train matrix as per-user item lists."""
    with open(os.path.join(d, "trn_mat.pkl"), "rb") as f:
        trn = pickle.load(f).tocsr()
    n_users, n_items = trn.shape
    u_items = [trn.indices[trn.indptr[u]:trn.indptr[u + 1]].tolist() for u in range(n_users)]
    dv = os.path.join(d, "diverse_profile")
    upaths = [os.path.join(d, "user_profile.json")] + [os.path.join(dv, f"diverse_user_profile_{k}.json") for k in range(3)]
    ipaths = [os.path.join(d, "item_profile.json")] + [os.path.join(dv, f"diverse_item_profile_{k}.json") for k in range(3)]
    ipaths.append(os.path.join(dv, "item_raw_meta_profile.json"))
    users = [read_profiles(p, "user_id") for p in upaths if os.path.exists(p)]
    items = [read_profiles(p, "item_id") for p in ipaths if os.path.exists(p)]
    return n_users, n_items, u_items, users, items


def tokenize(easyrec, model_dir, texts):
    p = subprocess.run([easyrec, "tokenize", "--model", model_dir, "--max-length", str(MAX_LEN)],
                       input="\n".join(t.replace("\n", " ") for t in texts) + "\n", capture_output=True,
                       text=True, check=True)
    ids = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(ids) == len(texts), (len(ids), len(texts))
    return ids


def mask_tokens(seq, rnd):
    """BERT 80/10/10 over non-special positions (p 0.15); random ids exclude pad, as easyrec."""
    ids, lab = list(seq), [-100] * len(seq)
    for t, x in enumerate(seq):
        if x in SPECIALS or rnd.random() >= 0.15:
            continue
        lab[t] = x
        v = rnd.random()
        if v < 0.8:
            ids[t] = MASK_ID
        elif v < 0.9:
            r = PAD_ID
            while r == PAD_ID:
                r = rnd.randrange(VOCAB)
            ids[t] = r
    return ids, lab


def cmd_data(a):
    rnd = random.Random(a.seed)
    n_users, n_items, u_items, users, items = load_domain(a.data)
    ex = [u for u in range(n_users) if u_items[u]]
    rnd.shuffle(ex)
    texts, batches = [], []
    for b in range(a.batches):
        rows = []
        for u in ex[b * BATCH:(b + 1) * BATCH]:
            pos = rnd.choice(u_items[u])
            tr = set(u_items[u])
            neg = rnd.randrange(n_items)
            while neg in tr:
                neg = rnd.randrange(n_items)
            if users:
                ut = rnd.choice(users)[u]
            else:  # no user profiles: up to 5 training items' profiles, as easyrec (items:K)
                s = rnd.choice(items)
                ut = " ".join(s[i] for i in [i for i in u_items[u] if i != pos][:5])
            rows.append((ut, rnd.choice(items)[pos], rnd.choice(items)[neg]))
        batches.append(rows)
        for r in rows:
            texts.extend(r)
    ids = tokenize(a.easyrec, a.model, texts)
    out, k = [], 0
    for rows in batches:
        b = {"users": [], "pos": [], "neg": [], "mlm_ids": [], "mlm_labels": []}
        for _ in rows:
            u, p, n = ids[k], ids[k + 1], ids[k + 2]
            k += 3
            b["users"].append(u), b["pos"].append(p), b["neg"].append(n)
        for i in range(len(rows)):  # interleaved u1 p1 n1 u2 ... like the collator
            for s in (b["users"][i], b["pos"][i], b["neg"][i]):
                m, lab = mask_tokens(s, rnd)
                b["mlm_ids"].append(m), b["mlm_labels"].append(lab)
        out.append(b)
    with open(a.out, "w") as f:
        json.dump(out, f)


def batch_stats(b, L, C, F):
    """Real tokens, padded tokens (four padded passes), masked positions, and the useful
    training FLOPs of one batch: 3 x forward, forward = per layer 2(4C^2 + 2CF) per real token
    + 4 T_s^2 C per sequence (scores and context over its own T_s real tokens), + the MLM head
    2C(C + V) per masked position, + the EasyRec head 2C^2 per contrastive sequence."""
    seqs = b["users"] + b["pos"] + b["neg"] + b["mlm_ids"]
    real = sum(len(s) for s in seqs)
    padded = sum(len(g) * max(len(s) for s in g) for g in (b["users"], b["pos"], b["neg"], b["mlm_ids"]))
    masked = sum(sum(1 for x in lab if x != -100) for lab in b["mlm_labels"])
    fwd = L * sum(2 * (4 * C * C + 2 * C * F) * len(s) + 4 * len(s) ** 2 * C for s in seqs)
    fwd += 2 * C * (C + VOCAB) * masked + 2 * C * C * 3 * len(b["users"])
    return real, padded, masked, 3 * fwd


# ---- PyTorch -----------------------------------------------------------------------------

def cmd_torch(a):
    import resource
    import torch
    import torch.nn.functional as F
    from make_model import Cfg, Encoder, pad_batch

    torch.set_num_threads(a.threads)
    L, C, NH, FF = SHAPES[a.shape]
    p_drop = 0.1

    class DropoutEncoder(Encoder):
        """make_model.Encoder with HF's dropout sites: embeddings (after LayerNorm), attention
        probabilities, attention output and FFN output (each before its residual add)."""

        def forward(self, ids, mask):
            c = self.c
            B, T = ids.shape
            H, A = c.hidden, c.heads
            d = H // A
            x = self.word(ids) + self.typ(torch.zeros_like(ids)) + self.pos(self.positions(ids))
            x = F.dropout(self.emb_ln(x), p_drop, self.training)
            add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            for l in range(c.layers):
                def heads(t):
                    return t.view(B, T, A, d).permute(0, 2, 1, 3)
                q, k, v = heads(self.q[l](x)), heads(self.k[l](x)), heads(self.v[l](x))
                s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add
                pr = F.dropout(F.softmax(s, dim=-1), p_drop, self.training)
                ctx = torch.matmul(pr, v).permute(0, 2, 1, 3).reshape(B, T, H)
                at = self.ln1[l](F.dropout(self.o[l](ctx), p_drop, self.training) + x)
                f = self.f2[l](F.gelu(self.f1[l](at)))
                x = self.ln2[l](F.dropout(f, p_drop, self.training) + at)
            return x

        def mlm_logits(self, h):
            """HF RobertaLMHead: dense, gelu, LayerNorm, decoder with the (tied) bias in one op."""
            z = self.lm_ln(F.gelu(self.lm_dense(h)))
            return F.linear(z, self.lm_decoder.weight, self.lm_bias)

    torch.manual_seed(a.seed)
    enc = DropoutEncoder(Cfg(layers=L, hidden=C, heads=NH, ffn=FF, vocab=VOCAB, max_pos=514))
    enc.randomize(torch.Generator().manual_seed(a.seed), std=0.02, ln_noise=0.0)
    del enc.pooler  # RobertaModel(add_pooling_layer=False): no such parameter in the original
    enc.train()
    with open(a.data) as f:
        batches = json.load(f)
    opt = torch.optim.AdamW(enc.parameters(), lr=5e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    total_steps = 25 * math.ceil(16994 / BATCH)  # 25 epochs of movies; only the lr values depend on it
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (total_steps - s) / total_steps))
    temp, mlm_w = 0.05, 0.1

    def embed(seqs):
        ids, m = pad_batch(seqs, PAD_ID)
        return enc.pool(enc(ids, m), m, "easyrec")

    times, cpus, losses = [], [], []
    t_start = time.perf_counter()
    for step in range(a.steps):
        b = batches[step % len(batches)]
        n = len(b["users"])
        eu, ep, en = embed(b["users"]), embed(b["pos"]), embed(b["neg"])
        sp = F.cosine_similarity(eu.unsqueeze(1), ep.unsqueeze(0), dim=-1) / temp
        sn = F.cosine_similarity(eu.unsqueeze(1), en.unsqueeze(0), dim=-1) / temp
        l_cl = F.cross_entropy(torch.cat([sp, sn], 1), torch.arange(n))
        ids, m = pad_batch(b["mlm_ids"], PAD_ID)
        lab = torch.full(ids.shape, -100, dtype=torch.long)
        for i, l in enumerate(b["mlm_labels"]):
            lab[i, :len(l)] = torch.tensor(l)
        h = enc(ids, m)
        if a.variant == "original":
            l_mlm = F.cross_entropy(enc.mlm_logits(h).view(-1, VOCAB), lab.view(-1), ignore_index=-100)
        else:
            sel = lab != -100
            l_mlm = F.cross_entropy(enc.mlm_logits(h[sel]), lab[sel])
        loss = l_cl + mlm_w * l_mlm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        sched.step()
        times.append(time.perf_counter() - t_start)
        cpus.append(time.process_time())  # CPU time of all the process's threads
        losses.append([loss.item(), l_cl.item(), l_mlm.item()])
        if not all(math.isfinite(x) for x in losses[-1]):
            raise SystemExit(f"torch {a.variant}: non-finite loss at step {step + 1}: {losses[-1]}")
    print(json.dumps({"times": times, "cpus": cpus, "losses": losses,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


# ---- the driver --------------------------------------------------------------------------

def proc_cpu(pid):
    """user + system CPU seconds of process pid (all its threads) from /proc/PID/stat; NaN if gone"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_proc(cmd, log_path=None, env=None):
    """Run cmd; returns (rc, stdout, stderr, maxrss_kb, cpu_s, line_times) where line_times are
    (perf_counter() time, the child's CPU seconds so far, line) for each new line of log_path,
    taken when the line appeared (polled every 10 ms)."""
    out_f = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench_train_{os.getpid()}.out"), "w+")
    err_f = open(out_f.name + ".err", "w+")
    p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env)
    line_times, buf, pos = [], "", 0
    status = ru = None

    def poll_log():
        nonlocal buf, pos
        if not log_path or not os.path.exists(log_path):
            return
        with open(log_path) as f:
            f.seek(pos)
            chunk = f.read()
            pos = f.tell()
        tnow, cnow = time.perf_counter(), proc_cpu(p.pid)
        buf += chunk
        while "\n" in buf:
            line, buf = buf.split("\n", 1)
            line_times.append((tnow, cnow, line))

    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        poll_log()
        time.sleep(0.01)
    poll_log()
    cpu_total = ru.ru_utime + ru.ru_stime
    line_times = [(t, cpu_total if math.isnan(c) else c, l) for t, c, l in line_times]  # seen after exit
    p.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0), err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    out_f.close(), err_f.close()
    os.unlink(out_f.name), os.unlink(err_f.name)
    return p.returncode, out, err, ru.ru_maxrss, cpu_total, line_times


def steady(times, warm):
    n = len(times)
    return (n - warm) * BATCH / (times[-1] - times[warm - 1])


def measure_easyrec(a, shape, model_dir, steps, warm, run_id):
    out = os.path.join(a.out, "train", f"run-{shape}-{run_id}")
    shutil.rmtree(out, ignore_errors=True)
    logp = os.path.join(out, "train_log.jsonl")
    cmd = [a.easyrec, "train", "--init", model_dir, "--data", a.data, "--val-data", "none",
           "--batch-size", str(BATCH), "--max-length", str(MAX_LEN), "--max-steps", str(steps),
           "--threads", str(a.threads), "--quiet", "--output", out]
    rc, _, err, rss, cpu, lt = run_proc(cmd, logp)
    shutil.rmtree(os.path.join(out, "checkpoint-last"), ignore_errors=True)  # ~3x the model; not needed
    if rc != 0:
        raise SystemExit(f"easyrec train failed (rc {rc}): {err[-2000:]}")
    recs = [json.loads(l) for _, _, l in lt if l.strip()]
    times = [t for t, _, l in lt if l.strip()]
    cpus = [c for _, c, l in lt if l.strip()]
    if len(recs) != steps:
        raise SystemExit(f"easyrec train: {len(recs)} log lines for {steps} steps")
    for r in recs:
        if not all(math.isfinite(r[k]) for k in ("loss", "loss_cl", "loss_mlm", "grad_norm")):
            raise SystemExit(f"easyrec train: non-finite values at step {r['step']}: {r}")
    rate = steady(times, warm)
    t_cum = [r["step"] * BATCH / r["examples_per_s"] for r in recs]  # since the trainer's t0
    return {"rate": rate, "rate_from_log": steady(t_cum, warm), "cpu_rate": a.threads * steady(cpus, warm),
            "rss_kb": rss, "cpu_s": cpu,
            "wall_steps": times[-1] - times[warm - 1],
            "losses": [[r["loss"], r["loss_cl"], r["loss_mlm"]] for r in recs]}


def measure_torch(a, shape, variant, data_json, steps, warm):
    cmd = [sys.executable, os.path.abspath(__file__), "torch", "--shape", shape, "--variant", variant,
           "--data", data_json, "--steps", str(steps), "--threads", str(a.threads)]
    rc, out, err, rss, cpu, _ = run_proc(cmd)
    if rc != 0:
        raise SystemExit(f"torch {variant} failed (rc {rc}): {err[-2000:]}")
    r = json.loads(out.strip().splitlines()[-1])
    return {"rate": steady(r["times"], warm), "cpu_rate": a.threads * steady(r["cpus"], warm), "rss_kb": rss,
            "cpu_s": cpu,
            "wall_steps": r["times"][-1] - r["times"][warm - 1], "losses": r["losses"]}


def sgemm_peak(a):
    """(OpenBLAS one-call GFLOP/s, easyrec gemm_mt GFLOP/s, easyrec backend name)"""
    p = subprocess.run([a.sgemm], capture_output=True, text=True, check=True)
    f = {l.split()[0]: l.split() for l in p.stdout.splitlines() if l.strip()}
    return float(f["openblas"][5]), float(f["easyrec"][5]), f["easyrec"][8]


def cmd_run(a):
    os.makedirs(os.path.join(a.out, "train"), exist_ok=True)
    log(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')} "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')} "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}  threads={a.threads}  nproc={os.cpu_count()}")
    import torch
    log(f"torch {torch.__version__} ({torch.__file__})")
    a.t_begin, a.load_begin = time.time(), os.getloadavg()
    plan = {"small": (a.steps_small, a.warm_small, a.rounds_small),
            "easyrec-small": (a.steps_es, a.warm_es, a.rounds_es)}
    shapes = [s for s in a.shapes.split(",") if s]
    res = {}
    peaks = []
    for shape in shapes:
        L, C, NH, FF = SHAPES[shape]
        model_dir = os.path.join(a.out, "train", f"init-{shape}")
        if not os.path.exists(os.path.join(model_dir, "model.safetensors")):
            subprocess.run([a.easyrec, "init", "--vocab", a.vocab, "--output", model_dir, "--layers", str(L),
                            "--hidden", str(C), "--heads", str(NH), "--ffn", str(FF)], check=True,
                           capture_output=True)
        steps, warm, rounds = plan[shape]
        if not 1 <= warm < steps or rounds < 1:
            raise SystemExit(f"{shape}: need 1 <= warm-up steps < steps and rounds >= 1")
        data_json = os.path.join(a.out, "train", f"batches-{shape}-n{steps}.json")
        if not os.path.exists(data_json):
            cmd_data(argparse.Namespace(seed=2024, data=a.data, batches=steps, easyrec=a.easyrec,
                                        model=model_dir, out=data_json))
        with open(data_json) as f:
            batches = json.load(f)
        st = [batch_stats(b, L, C, FF) for b in batches]
        real = statistics.mean(s[0] for s in st)
        padded = statistics.mean(s[1] for s in st)
        masked = statistics.mean(s[2] for s in st)
        flops_ex = statistics.mean(s[3] for s in st) / BATCH
        res[shape] = {"runs": {"easyrec": [], "torch-original": [], "torch-masked": []}, "real": real,
                      "padded": padded, "masked": masked, "flops_ex": flops_ex, "steps": steps, "warm": warm,
                      "rounds": rounds}
        log(f"{shape}: L={L} C={C} heads={NH} F={FF} V={VOCAB}; per batch of {BATCH}: {real:.0f} real tokens "
            f"(4 passes; {padded:.0f} with padding), {masked:.1f} masked positions; "
            f"{flops_ex / 1e9:.2f} GFLOP useful training work per example; {steps} steps, first {warm} warm-up")
        for rnd in range(rounds):
            peaks.append(sgemm_peak(a))
            order = ["easyrec", "torch-original", "torch-masked"]
            order = order[rnd % 3:] + order[:rnd % 3]  # rotate who runs first in each round
            for impl in order:
                if impl == "easyrec":
                    r = measure_easyrec(a, shape, model_dir, steps, warm, rnd)
                else:
                    r = measure_torch(a, shape, impl.split("-")[1] if impl == "torch-masked" else "original",
                                      data_json, steps, warm)
                res[shape]["runs"][impl].append(r)
                extra = f" (from log's cumulative rate: {r['rate_from_log']:.3f})" if "rate_from_log" in r else ""
                log(f"  round {rnd + 1} {impl:15s} {r['rate']:8.3f} ex/s{extra}  {r['cpu_rate']:.3f} ex per {a.threads} CPU-s  maxrss {r['rss_kb'] / 1024:.0f} MiB  "
                    f"cpu {r['cpu_s']:.0f} s  load {os.getloadavg()[0]:.1f}  loss first/last {r['losses'][0][0]:.3f}/{r['losses'][-1][0]:.3f}  "
                    f"[{time.strftime('%H:%M:%S')}]")
    peaks.append(sgemm_peak(a))
    report(a, res, peaks)


def report(a, res, peaks):
    peak = max(p[0] for p in peaks)
    peak_own = max(p[1] for p in peaks)
    lines = []
    load_end = os.getloadavg()
    lines.append(f"{time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - a.t_begin) / 60:.1f} min; {os.cpu_count()} CPUs, "
                 f"load average (1/5/15 min) at start {'/'.join(f'{x:.1f}' for x in a.load_begin)}, "
                 f"at end {'/'.join(f'{x:.1f}' for x in load_end)}; OPENBLAS_CORETYPE="
                 f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")
    lines.append(f"sgemm peak, OpenBLAS (one cblas_sgemm 2048x3072x768 call on {a.threads} threads, "
                 f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}): best {peak:.1f} GFLOP/s "
                 f"(median of {len(peaks)} measurements {statistics.median(p[0] for p in peaks):.1f})")
    lines.append(f"GEMM peak, easyrec's kernel ({peaks[0][2]}, gemm_mt, same shape, {a.threads} threads): "
                 f"best {peak_own:.1f} GFLOP/s (median {statistics.median(p[1] for p in peaks):.1f})")
    lines.append("MFU = useful training FLOPs per example x examples/s / peak; 'MFU' uses the OpenBLAS sgemm peak, "
                 "'MFU*' the higher of the two peaks")
    lines.append("examples/s = steady rate after the warm-up steps; best and median over the alternated rounds")
    lines.append(f"ex per {a.threads} CPU-s = the same examples over (the process's CPU seconds in those steps / "
                 f"{a.threads}): a cross-check of the ratios that discounts time lost to other load (it also credits "
                 f"idle threads, so it is not an absolute rate)")
    lines.append("")
    hdr = ("| shape | implementation | ex/s best | ex/s median | easyrec speed-up (best / median) | "
           f"ex per {a.threads} CPU-s, best (speed-up) | MFU | MFU* | peak RSS |")
    lines.append(hdr)
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape, r in res.items():
        runs = r["runs"]
        best = {k: max(x["rate"] for x in v) for k, v in runs.items()}
        med = {k: statistics.median(x["rate"] for x in v) for k, v in runs.items()}
        cbest = {k: max(x["cpu_rate"] for x in v) for k, v in runs.items()}
        for impl in ("easyrec", "torch-original", "torch-masked"):
            rss = max(x["rss_kb"] for x in runs[impl]) / 1024
            mfu = best[impl] * r["flops_ex"] / (peak * 1e9)
            mfu2 = best[impl] * r["flops_ex"] / (max(peak, peak_own) * 1e9)
            if impl == "easyrec":
                sp = "—"
            else:
                goal = 2.0 if impl == "torch-original" else 1.3
                sp = (f"{best['easyrec'] / best[impl]:.2f}x / {med['easyrec'] / med[impl]:.2f}x "
                      f"(goal >= {goal}x)")
            csp = "" if impl == "easyrec" else f" ({cbest['easyrec'] / cbest[impl]:.2f}x)"
            lines.append(f"| {shape} | {impl} | {best[impl]:.3f} | {med[impl]:.3f} | {sp} | {cbest[impl]:.3f}{csp} | "
                         f"{100 * mfu:.1f}% | "
                         f"{100 * mfu2:.1f}% | {rss:.0f} MiB |")
    lines.append("")
    for shape, r in res.items():
        lines.append(f"{shape}: {r['real'] / BATCH:.1f} real tokens per example over the 4 passes "
                     f"({r['padded'] / BATCH:.1f} padded), {r['masked'] / BATCH:.2f} masked positions per example, "
                     f"{r['flops_ex'] / 1e9:.2f} GFLOP useful training work per example; "
                     f"{r['rounds']} rounds of {r['steps']} steps per run, the first {r['warm']} not timed")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.out, "train", "results.json"), "w") as f:
        json.dump({"peaks": peaks, "results": res}, f, indent=1)
    with open(os.path.join(a.out, "train", "table.md"), "w") as f:
        f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--easyrec", default=os.path.join(ROOT, "build", "easyrec"))
    r.add_argument("--sgemm", required=True)
    r.add_argument("--vocab", default=os.path.join(ROOT, "..", "shared", "vocab", "roberta-base"))
    r.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "easyrec", "movies"))
    r.add_argument("--out", default=os.path.join(HERE, "out"))
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--shapes", default="small,easyrec-small")
    r.add_argument("--rounds-small", type=int, default=3)
    r.add_argument("--steps-small", type=int, default=6)
    r.add_argument("--warm-small", type=int, default=2)
    r.add_argument("--rounds-es", type=int, default=2)
    r.add_argument("--steps-es", type=int, default=3)
    r.add_argument("--warm-es", type=int, default=1)
    d = sub.add_parser("data")
    d.add_argument("--easyrec", default=os.path.join(ROOT, "build", "easyrec"))
    d.add_argument("--model", required=True)
    d.add_argument("--data", required=True)
    d.add_argument("--batches", type=int, default=8)
    d.add_argument("--seed", type=int, default=2024)
    d.add_argument("--out", required=True)
    t = sub.add_parser("torch")
    t.add_argument("--shape", choices=sorted(SHAPES), required=True)
    t.add_argument("--variant", choices=("original", "masked"), required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    {"run": cmd_run, "data": cmd_data, "torch": cmd_torch}[a.cmd](a)


if __name__ == "__main__":
    main()
