#!/usr/bin/python3
"""lowp_agreement.py — how much do bf16 and int8 change a model's rankings? (issue 15)

For one dataset (EasyRec layout) and one model: the user and item texts of
tools/cf_text_vectors.py (items: item_profile.json, else diverse item profile 0; users: the
user profile file, else diverse user profile 0, else the first 10 training items' profiles)
are encoded by `easyrec encode --precision fp32|bf16|int8`; then, in numpy (float64 scores,
training items masked, ties by lower item id), every test user's top-20 under each precision:
Recall@20 / NDCG@20 as the original computes them, the number of test hits (the metric's
resolution: one hit more or less moves Recall@20 by about 1/hits of itself), and the
agreement of each low-precision top-20 with fp32's (mean overlap of the two sets, share of
users whose list is identical in order).

  bench/lowp_agreement.py DATASET_DIR MODEL_DIR [--threads 2] [--out DIR]
"""
import argparse, os, pickle, subprocess, sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "lowp_agreement"))
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()
    import scipy.sparse as sp
    name = os.path.basename(os.path.normpath(a.data))
    out = os.path.join(a.out, name)
    os.makedirs(out, exist_ok=True)
    prefix = os.path.join(out, "text")
    if not os.path.exists(prefix + ".items.jsonl"):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "cf_text_vectors.py"), a.data, prefix, "--write-text"],
                       check=True, stdout=subprocess.DEVNULL)
    emb = {}
    for p in ("fp32", "bf16", "int8"):
        for side in ("users", "items"):
            f = os.path.join(out, f"{p}.{side}.npy")
            subprocess.run([os.path.join(ROOT, "build", "easyrec"), "encode", "--model", a.model, "--input",
                            f"{prefix}.{side}.jsonl", "--output", f, "--precision", p, "--threads", str(a.threads),
                            "--quiet"], check=True)
            emb[p, side] = np.load(f).astype(np.float64)
    trn = sp.csr_matrix(pickle.load(open(os.path.join(a.data, "trn_mat.pkl"), "rb")) != 0)
    tst = sp.csr_matrix(pickle.load(open(os.path.join(a.data, "tst_mat.pkl"), "rb")) != 0)
    users = np.flatnonzero(np.diff(tst.indptr) > 0)
    K = a.k
    disc = 1.0 / np.log2(np.arange(2, K + 2))
    tops = {}
    for p in ("fp32", "bf16", "int8"):
        U, I = emb[p, "users"], emb[p, "items"]
        top = np.empty((len(users), K), dtype=np.int64)
        for b in range(0, len(users), 1024):
            us = users[b:b + 1024]
            S = U[us] @ I.T
            S[trn[us].nonzero()] = -np.inf
            # ties by lower item id: stable sort of -score
            part = np.argsort(-S, axis=1, kind="stable")[:, :K]
            top[b:b + 1024] = part
        tops[p] = top
    print(f"{name}: {len(users)} test users, {I.shape[0]} items, dim {U.shape[1]}, model {a.model}")
    print("%-6s %-10s %-10s %-6s %-22s %-22s" % ("prec", "Recall@%d" % K, "NDCG@%d" % K, "hits", "overlap with fp32 top-%d" % K,
                                                "identical lists"))
    base = None
    for p in ("fp32", "bf16", "int8"):
        rec, ndcg, hits = [], [], 0
        for r, u in enumerate(users):
            gt = set(tst.indices[tst.indptr[u]:tst.indptr[u + 1]])
            h = np.array([t in gt for t in tops[p][r]], dtype=np.float64)
            hits += int(h.sum())
            rec.append(h.sum() / len(gt))
            idcg = disc[:min(len(gt), K)].sum()
            ndcg.append((h * disc).sum() / idcg)
        R, N = float(np.mean(rec)), float(np.mean(ndcg))
        ov = np.mean([len(set(tops[p][r]) & set(tops["fp32"][r])) / K for r in range(len(users))])
        same = np.mean([np.array_equal(tops[p][r], tops["fp32"][r]) for r in range(len(users))])
        if base is None:
            base = (R, N)
        print("%-6s %-10.5f %-10.5f %-6d %-22s %-22s  (Recall %+.2f%%, NDCG %+.2f%% vs fp32)" % (
            p, R, N, hits, "%.4f" % ov, "%.4f" % same, 100 * (R - base[0]) / base[0], 100 * (N - base[1]) / base[1]))


if __name__ == "__main__":
    main()
