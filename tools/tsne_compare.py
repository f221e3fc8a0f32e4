#!/usr/bin/python3
"""tsne_compare.py — easyrec tsne vs scikit-learn's TSNE on the same inputs: trustworthiness
(k = 10, sklearn.manifold.trustworthiness for both) and wall time, side by side.

    /usr/bin/python3 tools/tsne_compare.py --model MODEL_DIR [--catalog DIR] [--threads 2]

Inputs (each a labelled set):
  catalog-sports  the built-in catalog's sports domain: item + user profiles (original set)
                  encoded by MODEL_DIR with `easyrec encode`  (~500 points: exact t-SNE)
  catalog-all     all six domains' items + users                (~3,000 points: Barnes-Hut)
  movielens-items MovieLens-100K items (../shared/data/movielens-100k): 50-d truncated SVD of
                  the centred rating matrix, labelled by first genre (1,682 points)
Both sides: perplexity 30, 1000 iterations, PCA initialisation, learning rate auto
(scikit-learn's defaults; its method is Barnes-Hut, theta 0.5). easyrec runs exact t-SNE up
to 2,000 points and Barnes-Hut above; --exact-max 0 rows force Barnes-Hut for comparison.
Exit status 1 if easyrec's trustworthiness is below scikit-learn's - 0.01 on any set.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.manifold import TSNE, trustworthiness


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def encode(bin_, model, path, out, threads):
    run([bin_, "encode", "--model", model, "--input", path, "--output", out, "--threads", str(threads)])
    return np.load(out)


def catalog_set(bin_, model, cat, domains, tmp, threads):
    X, labels = [], []
    for d in domains:
        for side in ("item", "user"):
            emb = encode(bin_, model, os.path.join(cat, d, f"{side}_profile.json"), os.path.join(tmp, f"{d}_{side}.npy"),
                         threads)
            lab = open(os.path.join(cat, d, f"{side}_labels.txt")).read().split("\n")[:len(emb)]
            X.append(emb)
            labels += [f"{d}/{l}" if len(domains) > 1 else l for l in lab]
    return np.concatenate(X).astype(np.float32), labels


def movielens_set(root):
    ml = os.path.join(root, "movielens-100k")
    if not os.path.exists(os.path.join(ml, "u.data")):
        return None, None
    r = np.loadtxt(os.path.join(ml, "u.data"), dtype=np.int64)
    n_u, n_i = r[:, 0].max(), r[:, 1].max()
    M = np.zeros((n_i, n_u), dtype=np.float64)
    M[r[:, 1] - 1, r[:, 0] - 1] = r[:, 2]
    M -= M.mean(axis=1, keepdims=True)
    U, S, _ = np.linalg.svd(M, full_matrices=False)
    X = (U[:, :50] * S[:50]).astype(np.float32)
    genres = [l.split("|")[0] for l in open(os.path.join(ml, "u.genre"), encoding="latin-1") if l.strip()]
    labels = []
    for line in open(os.path.join(ml, "u.item"), encoding="latin-1"):
        f = line.rstrip("\n").split("|")
        flags = [int(x) for x in f[5:24]]
        labels.append(genres[flags.index(1)] if 1 in flags else "unknown")
    return X, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--catalog", default="build/catalog")
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--bin", default="build/easyrec")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.catalog, "sports")):
        run([a.bin, "catalog", "--output", a.catalog, "--quiet"])
    tmp = tempfile.mkdtemp(prefix="tsne-compare-")
    sets = []
    X, lab = catalog_set(a.bin, a.model, a.catalog, ["sports"], tmp, a.threads)
    sets.append(("catalog-sports", X, lab))
    X, lab = movielens_set(a.shared)
    if X is not None:
        sets.append(("movielens-items", X, lab))
    else:
        print("(no ../shared/data/movielens-100k: skipped)")
    X, lab = catalog_set(a.bin, a.model, a.catalog, ["sports", "books", "food", "games", "music", "travel"], tmp,
                         a.threads)
    sets.append(("catalog-all", X, lab))
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
    print(f"{'set':16s} {'n x d':>11s} | {'easyrec':>24s} {'T(10)':>7s} {'time s':>7s} | {'sklearn TSNE':>13s} "
          f"{'T(10)':>7s} {'time s':>7s} | verdict")
    results, ok = [], True
    for name, X, lab in sets:
        n = len(X)
        np.save(os.path.join(tmp, "x.npy"), X)
        rows = []
        for mode, extra in (("default", []), ("Barnes-Hut", ["--exact-max", "0"])):
            if mode == "Barnes-Hut" and n > 2000:
                continue  # default is already Barnes-Hut
            t0 = time.time()
            run([a.bin, "tsne", "--emb", os.path.join(tmp, "x.npy"), "--output", os.path.join(tmp, "p.svg"),
                 "--coords", os.path.join(tmp, "y.npy"), "--threads", str(a.threads), "--quiet"] + extra)
            t_ours = time.time() - t0
            Y = np.load(os.path.join(tmp, "y.npy"))
            rows.append((("exact" if n <= 2000 else "Barnes-Hut") if mode == "default" else mode,
                         trustworthiness(X, Y, n_neighbors=10), t_ours))
        t0 = time.time()
        Ys = TSNE(n_components=2, perplexity=30, init="pca", learning_rate="auto", random_state=0,
                  n_jobs=a.threads).fit_transform(X)
        t_sk = time.time() - t0
        t_sk_tr = trustworthiness(X, Ys, n_neighbors=10)
        for mode, tr, t in rows:
            good = tr >= t_sk_tr - 0.01
            ok &= good
            print(f"{name:16s} {n:5d} x {X.shape[1]:<4d} | {mode:>24s} {tr:7.4f} {t:7.2f} | {'Barnes-Hut':>13s} "
                  f"{t_sk_tr:7.4f} {t_sk:7.2f} | {'ok' if good else 'BELOW sklearn - 0.01'} "
                  f"(time ratio sklearn/easyrec {t_sk / t:.1f}x)")
            results.append({"set": name, "n": n, "d": int(X.shape[1]), "easyrec_mode": mode, "easyrec_T10": tr,
                            "easyrec_s": t, "sklearn_T10": t_sk_tr, "sklearn_s": t_sk})
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
