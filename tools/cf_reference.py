#!/usr/bin/python3
"""cf_reference.py — a PyTorch reference of `easyrec cf` (LightGCN / GCCF, plain, +con, +gen),
written from the description of the original (../shared/docs/easyrec-spec.md §6; RLMRec's
encoder/) to check the C implementation against.

  fixture OUT.json      small random problems for every algorithm x alignment: initial
                        weights, the triples / dropped edges / masked nodes of 3 steps, the
                        losses of each step and the weights after them (tests/test_cf.c
                        replays them). Regenerate: make fixtures
  train --data DIR ...  train on a dataset in the EasyRec layout as the original does
                        (CPU), print seconds per epoch and the final Recall/NDCG (bench/bench_cf.sh)
"""
import argparse, json, math, pickle, sys, time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


# ---- graph -------------------------------------------------------------------------------

def norm_adj(R, self_loop):
    """Â = D^-1/2 A D^-1/2 of A = [[0|I, R], [Rᵀ, 0|I]] (binarised); coalesced torch sparse,
    entries in row-major order with ascending columns (the C CSR order)."""
    N, M = R.shape
    R = (sp.coo_matrix(R) != 0).astype(np.float32)
    z = sp.identity if self_loop else (lambda n, dtype: sp.csr_matrix((n, n), dtype=dtype))
    A = sp.vstack([sp.hstack([z(N, dtype=np.float32), R]), sp.hstack([R.T, z(M, dtype=np.float32)])]).tocsr()
    A = (A != 0).astype(np.float32)
    deg = np.asarray(A.sum(axis=1)).reshape(-1)
    with np.errstate(divide="ignore"):
        dinv = np.power(deg, -0.5)
    dinv[np.isinf(dinv)] = 0.0
    A = sp.diags(dinv) @ A @ sp.diags(dinv)
    A = A.tocoo()
    idx = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
    t = torch.sparse_coo_tensor(idx, torch.from_numpy(A.data.astype(np.float32)), A.shape).coalesce()
    return t


def drop_edges(adj, keep):
    """keep: bool tensor over adj's entries (coalesced order); kept values not rescaled."""
    idx, val = adj.indices(), adj.values()
    return torch.sparse_coo_tensor(idx[:, keep], val[keep], adj.shape)


# ---- model -------------------------------------------------------------------------------

class CF(torch.nn.Module):
    def __init__(self, algo, align, N, M, d, L, text=None):
        super().__init__()
        self.algo, self.align, self.N, self.M, self.d, self.L = algo, align, N, M, d, L
        self.D = d if algo == "lightgcn" else (L + 1) * d
        self.user = torch.nn.Parameter(torch.nn.init.xavier_uniform_(torch.empty(N, d)))
        self.item = torch.nn.Parameter(torch.nn.init.xavier_uniform_(torch.empty(M, d)))
        if algo == "gccf":  # per-layer W: created and regularised, never used (as the original)
            self.W = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.nn.init.xavier_uniform_(torch.empty(d, d))) for _ in range(L)])
        self.text = text
        if align != "none":
            H = text.shape[1]
            i, o = (H, self.D) if align == "con" else (self.D, H)
            h = (H + self.D) // 2
            self.l1, self.l2 = torch.nn.Linear(i, h), torch.nn.Linear(h, o)
            torch.nn.init.xavier_uniform_(self.l1.weight)
            torch.nn.init.xavier_uniform_(self.l2.weight)
        if align == "gen":
            self.mask = torch.nn.Parameter(torch.zeros(1, d))

    def ordered_params(self):
        """The C model's flat order."""
        ps = [self.user, self.item]
        if self.algo == "gccf":
            ps += list(self.W)
        if self.align != "none":
            ps += [self.l1.weight, self.l1.bias, self.l2.weight, self.l2.bias]
        if self.align == "gen":
            ps.append(self.mask)
        return ps

    def mlp(self, x):
        return self.l2(F.leaky_relu(self.l1(x), 0.01))

    def propagate(self, adj, seeds=None):
        E = torch.cat([self.user, self.item], 0)
        if seeds is not None:
            m = torch.ones(E.shape[0], 1)
            m[seeds] = 0.0
            E = E * m + self.mask * (1.0 - m)
        layers = [E]
        for _ in range(self.L):
            layers.append(torch.sparse.mm(adj, layers[-1]))
        return sum(layers) if self.algo == "lightgcn" else torch.cat(layers, -1)


def nce(a, b, c, tau):
    n = lambda x: x / torch.sqrt(1e-8 + x.square().sum(-1, keepdim=True))
    a, b, c = n(a), n(b), n(c)
    return (-(a * b).sum(-1) / tau + torch.log(torch.exp(a @ c.T / tau).sum(-1))).sum()


def recon(x, y, tau):
    x, y = F.normalize(x), F.normalize(y)
    num = torch.exp((x * y).sum(1) / tau)
    den = torch.exp(x @ y.T / tau).sum(1)
    return -torch.log(num / (den + 1e-8) + 1e-8).mean()


def losses(model, adj, users, pos, neg, seeds, cfg):
    Fm = model.propagate(adj, seeds)
    N = model.N
    u, i, j = Fm[users], Fm[N + pos], Fm[N + neg]
    bpr = F.softplus((u * j).sum(-1) - (u * i).sum(-1)).sum() / len(users)
    reg = cfg["reg"] * sum(p.norm(2).square() for p in model.parameters())
    align = torch.zeros(())
    if model.align == "con":
        tu, ti = model.text[:N], model.text[N:]
        pu, pi = model.mlp(tu), model.mlp(ti)
        tau = cfg["kd_temp"]
        align = (nce(u, pu[users], pu, tau) + nce(i, pi[pos], pi[pos], tau) + nce(j, pi[neg], pi[neg], tau))
        align = align / len(users) * cfg["kd_weight"]
    elif model.align == "gen":
        align = cfg["kd_weight"] * recon(model.mlp(Fm[seeds]), model.text[seeds], cfg["kd_temp"])
    return bpr, reg, align


# ---- fixture -------------------------------------------------------------------------------

def make_fixture(path):
    rs = np.random.RandomState(7)
    torch.manual_seed(7)
    cases = []
    for algo in ("lightgcn", "gccf"):
        for align in ("none", "con", "gen"):
            N, M, d, L, H, B = 7, 9, 4, 2, 6, 5
            R = np.zeros((N, M), dtype=np.float32)
            for u in range(N):
                for it in rs.choice(M, size=rs.randint(2, 5), replace=False):
                    R[u, it] = 1
            text = torch.from_numpy(rs.randn(N + M, H).astype(np.float32))
            cfg = dict(algo=algo, align=align, layers=L, dim=d, keep_rate=0.8 if algo == "lightgcn" else 1.0,
                       reg=1e-2, kd_weight=0.5, kd_temp=0.3, mask_ratio=0.3, lr=0.01)
            model = CF(algo, align, N, M, d, L, text if align != "none" else None)
            with torch.no_grad():  # non-trivial biases and mask token
                for p in model.ordered_params():
                    p.add_(0.1 * torch.randn_like(p))
            init = torch.cat([p.detach().reshape(-1) for p in model.ordered_params()]).tolist()
            adj = norm_adj(R, self_loop=(algo == "gccf" and align == "none"))
            opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
            rows, cols = np.nonzero(R)
            steps = []
            for s in range(3):
                pick = rs.randint(0, len(rows), size=B)
                users, pos = rows[pick], cols[pick]
                neg = np.array([rs.choice([x for x in range(M) if R[u, x] == 0]) for u in users])
                keep = None
                a = adj
                if algo == "lightgcn":
                    keep = rs.rand(adj._nnz()) < cfg["keep_rate"]
                    a = drop_edges(adj, torch.from_numpy(keep))
                seeds = None
                if align == "gen":
                    seeds = rs.choice(N + M, size=max(int((N + M) * cfg["mask_ratio"]), 1), replace=False)
                t_u, t_p, t_n = (torch.from_numpy(x.astype(np.int64)) for x in (users, pos, neg))
                t_s = torch.from_numpy(seeds.astype(np.int64)) if seeds is not None else None
                bpr, reg, al = losses(model, a, t_u, t_p, t_n, t_s, cfg)
                loss = bpr + reg + al
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps.append(dict(users=users.tolist(), pos=pos.tolist(), neg=neg.tolist(),
                                  keep=None if keep is None else keep.astype(int).tolist(),
                                  seeds=None if seeds is None else seeds.tolist(),
                                  bpr=bpr.item(), reg=reg.item(), align=al.item(), total=loss.item()))
            final = torch.cat([p.detach().reshape(-1) for p in model.ordered_params()]).tolist()
            cases.append(dict(config=cfg, n_users=N, n_items=M, text_dim=H,
                              train=[[int(u), int(i)] for u, i in zip(rows, cols)],
                              text=text.reshape(-1).tolist() if align != "none" else None,
                              init=init, steps=steps, final=final))
    with open(path, "w") as f:
        json.dump(dict(generator="tools/cf_reference.py fixture", torch=torch.__version__, cases=cases), f)
        f.write("\n")


# ---- training on a dataset ----------------------------------------------------------------

def load_mat(path):
    with open(path, "rb") as f:
        return sp.coo_matrix((pickle.load(f) != 0).astype(np.float32))


def evaluate(model, adj, trn_csr, mat, ks=(5, 10, 20), batch=1024):
    with torch.no_grad():
        Fm = model.propagate(adj)
        U, I = Fm[:model.N], Fm[model.N:]
        mat = mat.tocsr()
        users = np.nonzero(np.diff(mat.indptr))[0]
        rec, ndcg = np.zeros(len(ks)), np.zeros(len(ks))
        for b0 in range(0, len(users), batch):
            us = users[b0:b0 + batch]
            s = U[torch.from_numpy(us)] @ I.T
            m = torch.from_numpy(trn_csr[us].toarray())
            s = s * (1 - m) - 1e8 * m
            top = torch.topk(s, max(ks)).indices.numpy()
            for r, u in enumerate(us):
                gt = set(mat.indices[mat.indptr[u]:mat.indptr[u + 1]])
                hit = np.array([t in gt for t in top[r]], dtype=np.float64)
                for q, k in enumerate(ks):
                    rec[q] += hit[:k].sum() / len(gt)
                    dcg = (hit[:k] / np.log2(np.arange(2, k + 2))).sum()
                    idcg = (1.0 / np.log2(np.arange(2, min(k, len(gt)) + 2))).sum()
                    ndcg[q] += dcg / idcg
        return rec / len(users), ndcg / len(users)


def train(a):
    torch.set_num_threads(a.threads)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    trn, val, tst = (load_mat(f"{a.data}/{s}_mat.pkl") for s in ("trn", "val", "tst"))
    N, M = trn.shape
    text = None
    if a.align != "none":
        tu, ti = (np.load(p).astype(np.float32) for p in a.text_emb.split(","))
        text = torch.from_numpy(np.concatenate([tu, ti], 0))
    model = CF(a.algo, a.align, N, M, a.dim, a.layers, text)
    adj = norm_adj(trn, self_loop=(a.algo == "gccf" and a.align == "none"))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    cfg = dict(reg=a.reg, kd_weight=a.kd_weight, kd_temp=a.kd_temp)
    rows, cols = trn.row, trn.col
    trn_csr = trn.tocsr()
    dok = trn.todok()
    keep_rate = a.keep_rate if a.algo == "lightgcn" else 1.0
    times = []
    best, best_state, bad = -1.0, None, 0
    for ep in range(a.epochs):
        t0 = time.time()
        negs = np.empty(len(rows), dtype=np.int64)
        for k in range(len(rows)):  # the original's per-interaction rejection sampling
            while True:
                j = np.random.randint(M)
                if (rows[k], j) not in dok:
                    break
            negs[k] = j
        perm = np.random.permutation(len(rows))
        for b0 in range(0, len(rows), a.batch_size):
            p = perm[b0:b0 + a.batch_size]
            adj_t = adj
            if keep_rate < 1.0:
                adj_t = drop_edges(adj, torch.rand(adj._nnz()) < keep_rate)
            seeds = None
            if a.align == "gen":
                seeds = torch.from_numpy(np.random.choice(N + M, size=max(int((N + M) * a.mask_ratio), 1),
                                                          replace=False))
            bpr, reg, al = losses(model, adj_t, torch.from_numpy(rows[p].astype(np.int64)),
                                  torch.from_numpy(cols[p].astype(np.int64)), torch.from_numpy(negs[p]), seeds, cfg)
            opt.zero_grad()
            (bpr + reg + al).backward()
            opt.step()
        times.append(time.time() - t0)
        if ep % a.test_step == 0 and not a.no_val:
            r, _ = evaluate(model, adj, trn_csr, val)
            print(f"epoch {ep} {times[-1]:.2f}s val Recall@20 {r[-1]:.4f}", file=sys.stderr, flush=True)
            if r[-1] > best:
                best, bad = r[-1], 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= a.patience:
                    break
        else:
            print(f"epoch {ep} {times[-1]:.2f}s", file=sys.stderr, flush=True)
    if best_state is not None:
        model.load_state_dict(best_state)
    out = dict(seconds_per_epoch=float(np.mean(times)), epochs=len(times))
    if not a.no_eval:
        r, n = evaluate(model, adj, trn_csr, tst)
        out["test"] = {f"recall@{k}": float(r[q]) for q, k in enumerate((5, 10, 20))}
        out["test"].update({f"ndcg@{k}": float(n[q]) for q, k in enumerate((5, 10, 20))})
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("out")
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--algo", default="lightgcn", choices=["lightgcn", "gccf"])
    t.add_argument("--align", default="none", choices=["none", "con", "gen"])
    t.add_argument("--text-emb")
    t.add_argument("--layers", type=int, default=3)
    t.add_argument("--dim", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--batch-size", type=int, default=4096)
    t.add_argument("--reg", type=float, default=1e-6)
    t.add_argument("--kd-weight", type=float, default=1e-3)
    t.add_argument("--kd-temp", type=float, default=0.1)
    t.add_argument("--mask-ratio", type=float, default=0.1)
    t.add_argument("--keep-rate", type=float, default=0.8)
    t.add_argument("--epochs", type=int, default=3000)
    t.add_argument("--test-step", type=int, default=3)
    t.add_argument("--patience", type=int, default=5)
    t.add_argument("--seed", type=int, default=2024)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--no-val", action="store_true", help="no validation (timing runs)")
    t.add_argument("--no-eval", action="store_true", help="no final test evaluation")
    a = ap.parse_args()
    if a.cmd == "fixture":
        make_fixture(a.out)
    else:
        train(a)


if __name__ == "__main__":
    main()
