#!/usr/bin/python3
"""eval_reference.py — an independent re-implementation of the ORIGINAL EasyRec zero-shot
evaluation (eval_text_emb.py + utility/metric.py + EvalEmbedderAllRankTestDataset in
HKUDS/EasyRec), to check `easyrec eval --user-emb --item-emb` against. Written from the
behaviour described in ../shared/docs/easyrec-spec.md §4.1, with the original's loop
structure kept on purpose (it is also the "original-style" peer of bench/bench_eval.py):

  * test users  = np.array(list(set(tst_mat.row)))    (set iteration order, as the original)
  * batches of 256 users; scores = U[users] @ I.T in float32 torch;
    train mask m = (trn_mat.tocsr() != 0) rows as dense 0/1; s * (1 - m) - 1e8 * m
  * torch.topk(k = max(K)); per user a python hit list `x in ground_truth`;
    recall = hits / |G_u|; ndcg with IDCG over min(k, |G_u|); summed per batch / n_users

Usage (Debian python3-torch, python3-scipy, python3-numpy):
  /usr/bin/python3 tools/eval_reference.py --data DIR --user-emb U.npy --item-emb I.npy \
      [--split tst|val] [--k 10,20] [--threads N]
prints one JSON object {"n_users", "n_items", "recall@K", "ndcg@K", ..., "seconds"}.
"""
import argparse
import json
import os
import pickle
import sys
import time

import numpy as np
import torch


def load_mat(path):
    with open(path, "rb") as f:
        return pickle.load(f)


# ---- utility/metric.py, as the original computes -------------------------------------------

def recall(test_data, r, k):
    right_pred = r[:, :k].sum(1)
    recall_n = np.array([len(test_data[i]) for i in range(len(test_data))])
    return np.sum(right_pred / recall_n)


def ndcg(test_data, r, k):
    pred_data = r[:, :k]
    test_matrix = np.zeros((len(pred_data), k))
    for i, items in enumerate(test_data):
        length = k if k <= len(items) else len(items)
        test_matrix[i, :length] = 1
    idcg = np.sum(test_matrix * 1. / np.log2(np.arange(2, k + 2)), axis=1)
    dcg = np.sum(pred_data * (1. / np.log2(np.arange(2, k + 2))), axis=1)
    idcg[idcg == 0.] = 1.
    v = dcg / idcg
    v[np.isnan(v)] = 0.
    return np.sum(v)


def get_label(test_data, pred_data):
    r = []
    for i in range(len(test_data)):
        gt = test_data[i]
        r.append(np.array(list(map(lambda x: x in gt, pred_data[i]))).astype("float"))
    return np.array(r).astype("float")


# ---- the evaluation loop ----------------------------------------------------------------------

def test_users_and_truth(tst):
    pos = [list() for _ in range(tst.shape[0])]
    users = set()
    for i in range(len(tst.data)):
        pos[tst.row[i]].append(tst.col[i])
        users.add(tst.row[i])
    return np.array(list(users)), pos


def evaluate_original(U, I, trn, tst, ks, batch=256):
    """The original's loop; returns (metrics dict, n_users)."""
    csr = (trn.tocsr() != 0) * 1.0
    users, pos = test_users_and_truth(tst)
    kmax = max(ks)
    Ut, It = torch.from_numpy(U).float(), torch.from_numpy(I).float()
    res = {"recall": np.zeros(len(ks)), "ndcg": np.zeros(len(ks))}
    ratings, truths = [], []
    for b in range(0, len(users), batch):
        bu = users[b:b + batch]
        mask = torch.from_numpy(np.asarray(csr[bu].toarray())).long()
        with torch.no_grad():
            s = Ut[torch.from_numpy(bu).long()] @ It.T
            s = s * (1 - mask) - 1e8 * mask
            _, top = torch.topk(s, k=kmax)
        ratings.append(top.cpu())
        truths.append([list(pos[u]) for u in bu])
    for top, gt in zip(ratings, truths):
        r = get_label(gt, top.numpy())
        for j, k in enumerate(ks):
            res["recall"][j] += recall(gt, r, k) / len(users)
            res["ndcg"][j] += ndcg(gt, r, k) / len(users)
    out = {}
    for j, k in enumerate(ks):
        out[f"recall@{k}"] = float(res["recall"][j])
        out[f"ndcg@{k}"] = float(res["ndcg"][j])
    return out, len(users)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--user-emb", required=True)
    ap.add_argument("--item-emb", required=True)
    ap.add_argument("--split", default="tst", choices=["tst", "val"])
    ap.add_argument("--k", default="10,20")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    ks = [int(x) for x in a.k.split(",")]
    trn = load_mat(os.path.join(a.data, "trn_mat.pkl"))
    tst = load_mat(os.path.join(a.data, f"{a.split}_mat.pkl"))
    U = np.load(a.user_emb).astype(np.float32)
    I = np.load(a.item_emb).astype(np.float32)
    t0 = time.time()
    m, n = evaluate_original(U, I, trn, tst, ks)
    m.update({"n_users": n, "n_items": int(I.shape[0]), "seconds": time.time() - t0})
    json.dump(m, sys.stdout)
    print()


if __name__ == "__main__":
    main()
