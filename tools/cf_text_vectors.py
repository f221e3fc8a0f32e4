#!/usr/bin/python3
"""cf_text_vectors.py — text embeddings for `easyrec cf --text-emb` without an encoder: TF-IDF
of the user and item profiles reduced to K dimensions (TruncatedSVD, L2-normalised), or random
unit vectors of the same shape (the control of the quality table). Rows = dense ids.

  cf_text_vectors.py DATASET_DIR OUT_PREFIX [--dim 64] [--random] [--seed 0]
writes OUT_PREFIX.users.npy and OUT_PREFIX.items.npy.
  cf_text_vectors.py DATASET_DIR OUT_PREFIX --write-text
writes the texts instead, OUT_PREFIX.users.jsonl and OUT_PREFIX.items.jsonl ({"id", "profile"}
per line, rows = dense ids), for `easyrec encode --model M --input F --output F.npy`, so an
encoder's vectors see exactly the texts TF-IDF saw.

Item text: item_profile.json, else diverse_profile/diverse_item_profile_0.json. User text:
user_profile.json, else diverse_profile/diverse_user_profile_0.json, else the profiles of the
user's first 10 training items (ascending id; training split only).
"""
import argparse, json, os, pickle, sys

import numpy as np


def read_profiles(path, key, n):
    out = [None] * n
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                i = int(o[key])
                if 0 <= i < n:
                    out[i] = o.get("profile") or ""
    missing = sum(x is None for x in out)
    if missing:
        sys.exit(f"{path}: {missing} of {n} ids have no profile")
    return out


def first(d, names):
    for n in names:
        p = os.path.join(d, n)
        if os.path.exists(p):
            return p
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--random", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-text", action="store_true")
    a = ap.parse_args()
    import scipy.sparse as sp
    trn = sp.csr_matrix(pickle.load(open(os.path.join(a.data, "trn_mat.pkl"), "rb")) != 0)
    N, M = trn.shape
    if a.random and not a.write_text:
        rs = np.random.RandomState(a.seed)
        U, I = rs.randn(N, a.dim), rs.randn(M, a.dim)
    else:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        ip = first(a.data, ["item_profile.json", "diverse_profile/diverse_item_profile_0.json"])
        if not ip:
            sys.exit(f"{a.data}: no item profiles")
        items = read_profiles(ip, "item_id", M)
        up = first(a.data, ["user_profile.json", "diverse_profile/diverse_user_profile_0.json"])
        if up:
            users = read_profiles(up, "user_id", N)
        else:
            users = [" ".join(items[j] for j in sorted(trn.indices[trn.indptr[u]:trn.indptr[u + 1]])[:10]) for u in range(N)]
        if a.write_text:
            for name, T in (("users", users), ("items", items)):
                with open(f"{a.out}.{name}.jsonl", "w", encoding="utf-8") as f:
                    for i, t in enumerate(T):
                        f.write(json.dumps({"id": i, "profile": t}, ensure_ascii=False) + "\n")
            print(f"{a.out}.users.jsonl ({N} lines), {a.out}.items.jsonl ({M} lines)")
            return
        tf = TfidfVectorizer(min_df=2, sublinear_tf=True).fit(items + users)
        svd = TruncatedSVD(n_components=a.dim, random_state=a.seed).fit(tf.transform(items + users))
        U, I = svd.transform(tf.transform(users)), svd.transform(tf.transform(items))
    for name, X in (("users", U), ("items", I)):
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        np.save(f"{a.out}.{name}.npy", X.astype(np.float32))
    print(f"{a.out}.users.npy {U.shape}, {a.out}.items.npy {I.shape}")


if __name__ == "__main__":
    main()
