#!/usr/bin/python3
"""Independent check of `easyrec data import` (pandas + scipy; no code shared with the C side).

  import_check.py counts FILE [--min-rating R] [--k-core K] [--split P,P,P]
      The expected counts for a raw interaction file (TSV `user item rating timestamp`, as
      MovieLens u.data): users, items and interactions after the rating filter, duplicate
      removal and the iterated k-core, and the per-split counts of the time split (the latest
      round(n*p_tst) of each user to test, the round(n*p_val) before them to val, >= 1 left
      in train; ties by line order). One `key value` line each; tests/fixtures/import/
      ml100k_counts.txt holds this output for MovieLens-100K (tests/test_import.c compares).
  import_check.py verify DIR FILE [same options]
      Load DIR's trn/val/tst_mat.pkl with pickle + scipy, check shapes, disjointness, that the
      union through user_id_map.tsv / item_id_map.tsv equals the filtered interactions, that it
      is a k-core, and that every user has a training interaction. Exit 1 on any mismatch.
"""
import argparse
import pickle
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sp


def load(path, min_rating, k):
    df = pd.read_csv(path, sep="\t", header=None, names=["user", "item", "rating", "ts"], dtype={"user": str, "item": str})
    df["line"] = np.arange(len(df))
    if min_rating is not None:
        df = df[df.rating >= min_rating]
    df = df.sort_values(["ts", "line"]).drop_duplicates(["user", "item"], keep="first")
    rounds = 0
    while k and k > 1:
        rounds += 1
        uc = df.user.map(df.user.value_counts())
        ic = df.item.map(df.item.value_counts())
        keep = (uc >= k) & (ic >= k)
        if keep.all():
            break
        df = df[keep]
    return df, rounds


def counts(args):
    df, rounds = load(args.file, args.min_rating, args.k_core)
    p = [float(x) for x in args.split.split(",")]
    out = {"users": df.user.nunique(), "items": df.item.nunique(), "interactions": len(df)}
    trn = val = tst = 0
    for _, g in df.groupby("user"):
        n = len(g)
        nt = int(np.floor(n * p[2] + 0.5))
        nv = int(np.floor(n * p[1] + 0.5))
        while nv + nt > n - 1:
            if nv:
                nv -= 1
            else:
                nt -= 1
        tst += nt
        val += nv
        trn += n - nt - nv
    out.update({"time_trn": trn, "time_val": val, "time_tst": tst})
    for key, v in out.items():
        print(key, v)


def verify(args):
    df, _ = load(args.file, args.min_rating, args.k_core)
    mats = [pickle.load(open(f"{args.dir}/{s}_mat.pkl", "rb")) for s in ("trn", "val", "tst")]
    bad = []
    shape = mats[0].shape
    for m in mats:
        if not isinstance(m, sp.coo_matrix) or m.shape != shape:
            bad.append(f"{type(m)} {m.shape}")
        if m.row.dtype != np.int32 or m.data.dtype != np.float64:
            bad.append(f"dtypes {m.row.dtype} {m.data.dtype}")
    csr = [m.tocsr() for m in mats]
    if csr[0].multiply(csr[1]).nnz or csr[0].multiply(csr[2]).nnz or csr[1].multiply(csr[2]).nnz:
        bad.append("splits overlap")
    union = (csr[0] + csr[1] + csr[2]).tocoo()
    umap = pd.read_csv(f"{args.dir}/user_id_map.tsv", sep="\t", dtype=str).iloc[:, 1].to_numpy()
    imap = pd.read_csv(f"{args.dir}/item_id_map.tsv", sep="\t", dtype=str).iloc[:, 1].to_numpy()
    got = set(zip(umap[union.row], imap[union.col]))
    want = set(zip(df.user, df.item))
    if got != want:
        bad.append(f"union differs from the filtered interactions ({len(got)} vs {len(want)})")
    if shape != (len(umap), len(imap)):
        bad.append(f"shape {shape} vs maps {len(umap)} x {len(imap)}")
    k = args.k_core or 0
    if k > 1 and (np.diff(union.tocsr().indptr).min() < k or np.diff(union.tocsc().indptr).min() < k):
        bad.append("not a k-core")
    if np.diff(csr[0].indptr).min() < 1:
        bad.append("a user without training interactions")
    print("scipy loaded", shape, [m.nnz for m in mats])
    for b in bad:
        print("MISMATCH", b)
    sys.exit(1 if bad else 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["counts", "verify"])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--min-rating", type=float)
    ap.add_argument("--k-core", type=int, default=0)
    ap.add_argument("--split", default="0.8,0.1,0.1")
    args = ap.parse_args()
    if args.mode == "counts":
        args.file = args.paths[0]
        counts(args)
    else:
        args.dir, args.file = args.paths
        verify(args)


if __name__ == "__main__":
    main()
