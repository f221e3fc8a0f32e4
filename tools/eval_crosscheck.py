#!/usr/bin/python3
"""eval_crosscheck.py — compare `easyrec eval --user-emb --item-emb` with the independent
re-implementation of the original evaluation (tools/eval_reference.py) on the real
datasets in ../shared/data, for embeddings of three kinds (seeded, written to OUT):

  random   unit Gaussian vectors, D = 64 (near-zero metrics, no ties)
  signal   items: Gaussian D = 64; users: Gaussian noise + 6 x the mean of their val
           items + 6 x the mean of their test items (a planted answer), so Recall/NDCG
           are far from zero, with hits at every rank position
  ties     users/items with entries in {-1, 0, 1}, D = 3: scores take a handful of
           values, so the ORDER AMONG TIES decides the lists. easyrec breaks ties by
           lower item id; torch.topk's order is implementation-defined: differences
           here are expected and show how much the tie rule can matter

  /usr/bin/python3 tools/eval_crosscheck.py [--out DIR] [--datasets easyrec/movies,...] [--model DIR]
prints one line per (dataset, split, kind) with both results and the max |difference|;
with --model, also `easyrec eval --model DIR` on xrec-yelp's real profiles against the
reference run on the embeddings easyrec cached.
"""
import argparse
import json
import os
import pickle
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_reference  # noqa: E402


def embeddings(kind, trn, held, seed):
    r = np.random.default_rng(seed)
    nu, ni = trn.shape
    if kind == "ties":
        return (r.integers(-1, 2, (nu, 3)).astype(np.float32), r.integers(-1, 2, (ni, 3)).astype(np.float32))
    I = r.standard_normal((ni, 64)).astype(np.float32)
    I /= np.linalg.norm(I, axis=1, keepdims=True)
    U = r.standard_normal((nu, 64)).astype(np.float32)
    if kind == "signal":
        for h in held:
            csr = (h.tocsr() != 0).tocsr()
            for u in range(nu):
                its = csr.indices[csr.indptr[u]:csr.indptr[u + 1]]
                if len(its):
                    U[u] += I[its].mean(0) * 6
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return U, I


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/easyrec-crosscheck")
    ap.add_argument("--datasets", default="easyrec/movies,easyrec/sports,easyrec/arts,easyrec/yelp,xrec-yelp")
    ap.add_argument("--easyrec", default=os.path.join(ROOT, "build", "easyrec"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="also run --model DIR end to end on xrec-yelp's text")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    worst = {}
    for ds in a.datasets.split(","):
        d = os.path.join(SHARED, ds)
        trn = eval_reference.load_mat(os.path.join(d, "trn_mat.pkl"))
        held = [eval_reference.load_mat(os.path.join(d, f"{s}_mat.pkl")) for s in ("val", "tst")]
        for kind in ("random", "signal", "ties"):
            U, I = embeddings(kind, trn, held, 0)
            up, ip = os.path.join(a.out, f"{ds.replace('/', '_')}-{kind}-U.npy"), os.path.join(a.out, f"{ds.replace('/', '_')}-{kind}-I.npy")
            np.save(up, U)
            np.save(ip, I)
            for split in ("tst", "val"):
                tst = eval_reference.load_mat(os.path.join(d, f"{split}_mat.pkl"))
                ref, n = eval_reference.evaluate_original(U, I, trn, tst, [10, 20])
                p = subprocess.run([a.easyrec, "eval", "--data", d, "--user-emb", up, "--item-emb", ip, "--split", split,
                                    "--json", "--threads", str(a.threads)], capture_output=True, text=True)
                if p.returncode:
                    sys.exit(p.stderr)
                e = json.loads(p.stdout)
                diff = max(abs(e["mean"][k] - ref[k]) for k in ref)
                worst[kind] = max(worst.get(kind, 0), diff)
                print(f"{ds:16s} {split} {kind:6s} users {n:5d}/{e['n_users']:5d}  "
                      f"reference R@20 {ref['recall@20']:.6f} N@20 {ref['ndcg@20']:.6f}  "
                      f"easyrec R@20 {e['mean']['recall@20']:.6f} N@20 {e['mean']['ndcg@20']:.6f}  "
                      f"max|diff| {diff:.2e}", flush=True)
    print("max |diff| by kind: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    if a.model:
        model_check(a)


def model_check(a):
    """--model end to end on xrec-yelp (real user and item text): easyrec encodes and
    evaluates; the reference evaluates the embeddings easyrec cached"""
    import glob
    d, cache = os.path.join(SHARED, "xrec-yelp"), os.path.join(a.out, "cache")
    p = subprocess.run([a.easyrec, "eval", "--model", a.model, "--data", d, "--cache", cache, "--json", "--quiet",
                        "--threads", str(a.threads)], capture_output=True, text=True)
    if p.returncode:
        sys.exit(p.stderr)
    e = json.loads(p.stdout)
    newest = lambda pat: max(glob.glob(os.path.join(cache, pat)), key=os.path.getmtime)
    U, I = np.load(newest("users-original-profiles-*.npy")), np.load(newest("items-original-*.npy"))
    trn = eval_reference.load_mat(os.path.join(d, "trn_mat.pkl"))
    tst = eval_reference.load_mat(os.path.join(d, "tst_mat.pkl"))
    ref, n = eval_reference.evaluate_original(U, I, trn, tst, [10, 20])
    diff = max(abs(e["mean"][k] - ref[k]) for k in ref)
    spread = float((U[:200] @ I.T).std(1).mean())
    print(f"  (per-user std of the scores: {spread:.2e}; a random model's embeddings are nearly collinear, so\n"
          f"   its rankings are decided by float32 rounding and the two summation orders may differ)")
    print(f"--model {a.model} on xrec-yelp text: easyrec R@20 {e['mean']['recall@20']:.6f} "
          f"N@20 {e['mean']['ndcg@20']:.6f}; reference on its cached embeddings R@20 {ref['recall@20']:.6f} "
          f"N@20 {ref['ndcg@20']:.6f}; max|diff| {diff:.2e}")


if __name__ == "__main__":
    main()
