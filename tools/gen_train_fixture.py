#!/usr/bin/python3
"""gen_train_fixture.py — the training reference: tests/fixtures/train/ (run: make fixtures).

A small random RoBERTa + EasyRec head + untied LM head (tools/make_model.py) and one
EasyRec training batch of 3 (user, positive, negative) triples, computed the way the
original Easyrec.forward does with dropout off: four separate padded encoder passes (users,
positives, negatives, and the interleaved MLM copies u1,p1,n1,u2,...), cosine/temperature
InfoNCE over the (3, 6) logits, MLM cross-entropy over ALL positions with ignore_index -100,
loss = L_cl + 0.1 L_mlm; then loss.backward().

Written:
  model/             the checkpoint (config.json + model.safetensors, fp32)
  batch.json         ids of every sequence, MLM ids + labels, temp, mlm_weight, the losses
  grads.safetensors  d loss / d every parameter, under the checkpoint's names
  adamw.safetensors  parameters after 3 torch.optim.AdamW steps (lr 1e-3, wd 0.01, no decay
                     on biases and LayerNorm weights, betas 0.9/0.999, eps 1e-8) each using
                     the gradients above
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model import Cfg, Encoder, pad_batch, save_model, write_safetensors  # noqa: E402


def main(out):
    gen = torch.Generator().manual_seed(777)
    c = Cfg(vocab=512, layers=2, hidden=32, heads=4, ffn=64, max_pos=66)
    enc = Encoder(c)
    enc.randomize(gen, std=0.05)
    save_model(enc, os.path.join(out, "model"), fmt="safetensors", mlp=True, lm_head=True, decoder_bias=False)

    def seq(n):
        return [0] + torch.randint(4, c.vocab, (n - 2,), generator=gen).tolist() + [2]

    b = 3
    users = [seq(n) for n in (9, 14, 5)]
    pos = [seq(n) for n in (7, 11, 12)]
    neg = [seq(n) for n in (13, 6, 8)]
    mlm_ids, labels = [], []
    mask_id = 500
    for i in range(b):
        for s in (users[i], pos[i], neg[i]):
            ids, lab = list(s), [-100] * len(s)
            for t in range(1, len(s) - 1):
                r = torch.rand(1, generator=gen).item()
                if r < 0.3:
                    lab[t] = s[t]
                    ids[t] = mask_id if r < 0.2 else (s[t] if r < 0.25 else 7)
            mlm_ids.append(ids)
            labels.append(lab)
    temp, mlm_weight = 0.05, 0.1

    def embed(seqs):
        ids, mask = pad_batch(seqs, c.pad)
        return enc.pool(enc(ids, mask), mask, "easyrec")

    eu, ep, en = embed(users), embed(pos), embed(neg)
    sp = F.cosine_similarity(eu.unsqueeze(1), ep.unsqueeze(0), dim=-1) / temp
    sn = F.cosine_similarity(eu.unsqueeze(1), en.unsqueeze(0), dim=-1) / temp
    logits = torch.cat([sp, sn], 1)
    l_cl = F.cross_entropy(logits, torch.arange(b))
    ids, mask = pad_batch(mlm_ids, c.pad)
    lab = torch.full(ids.shape, -100, dtype=torch.long)
    for i, l in enumerate(labels):
        lab[i, :len(l)] = torch.tensor(l)
    h = enc(ids, mask)
    l_mlm = F.cross_entropy(enc.mlm_logits(h).view(-1, c.vocab), lab.view(-1), ignore_index=-100)
    loss = l_cl + mlm_weight * l_mlm
    loss.backward()

    names = enc.state_dict_hf(prefix=True, mlp=True, lm_head=True, decoder_bias=False)
    # map HF names to the Encoder parameters they view
    by_ptr = {p.data_ptr(): p for p in enc.parameters()}
    grads, params = {}, {}
    for k, v in names.items():
        p = by_ptr[v.data_ptr()]
        grads[k] = p.grad.detach().clone()
        params[k] = p
    write_safetensors(os.path.join(out, "grads.safetensors"), grads)

    decay = [p for k, p in params.items() if not (k.endswith(".bias") or "LayerNorm" in k or "layer_norm" in k)]
    nodecay = [p for k, p in params.items() if k.endswith(".bias") or "LayerNorm" in k or "layer_norm" in k]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    g0 = {k: grads[k] for k in params}
    for _ in range(3):
        for k, p in params.items():
            p.grad = g0[k].clone()
        opt.step()
    write_safetensors(os.path.join(out, "adamw.safetensors"), {k: p.detach().clone() for k, p in params.items()})

    with open(os.path.join(out, "batch.json"), "w") as f:
        json.dump({"users": users, "pos": pos, "neg": neg, "mlm_ids": mlm_ids, "mlm_labels": labels,
                   "temp": temp, "mlm_weight": mlm_weight, "loss_cl": l_cl.item(), "loss_mlm": l_mlm.item(),
                   "loss": loss.item()}, f)
    print(f"train fixture: loss {loss.item():.6f} (cl {l_cl.item():.6f}, mlm {l_mlm.item():.6f})")


if __name__ == "__main__":
    main(os.path.join(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures", "train"))


def make_datasets(out):
    """Two tiny SYNTHETIC datasets in the EasyRec release layout for trainer tests
    (tests/test_trainer.c): d1 has user profiles, d2 has none (users described by their
    training items). Every file carries a ".in" suffix (make test stages them under their
    layout names with tools/stage_fixtures.sh), so nothing here looks like release data."""
    import random
    import pickle
    import scipy.sparse as sp
    import numpy as np
    words = ("basketball soccer swimming jazz rock novels cooking garden puzzle camping chess movies "
             "painting yoga hiking coffee science history travel music").split()
    for name, n_users, n_items, with_users in (("d1", 16, 30, True), ("d2", 10, 24, False)):
        rnd = random.Random(name)
        d = os.path.join(out, "data", name)
        os.makedirs(os.path.join(d, "diverse_profile"), exist_ok=True)
        topic = [rnd.randrange(len(words)) for _ in range(n_items)]
        mats = {"trn": [], "val": [], "tst": []}
        for u in range(n_users):
            items = rnd.sample(range(n_items), 5)
            mats["trn"] += [(u, i) for i in items[:3]]
            mats["val"].append((u, items[3]))
            if u % 3:
                mats["tst"].append((u, items[4]))
        for split, pairs in mats.items():
            r, c = zip(*pairs)
            m = sp.coo_matrix((np.ones(len(r)), (np.array(r, dtype=np.int32), np.array(c, dtype=np.int32))),
                              shape=(n_users, n_items))
            with open(os.path.join(d, f"{split}_mat.pkl.in"), "wb") as f:
                pickle.dump(m, f, protocol=4)

        def write(path, key, texts):
            with open(path + ".in", "w") as f:
                for i, t in enumerate(texts):
                    f.write(json.dumps({key: i, "profile": t}) + "\n")
        item_text = [f"This item suits fans of {words[t]} and {words[(t + 3) % len(words)]}." for t in topic]
        write(os.path.join(d, "item_profile.json"), "item_id", item_text)
        write(os.path.join(d, "diverse_profile", "diverse_item_profile_0.json"), "item_id",
              [f"People who love {words[t]} will enjoy this." for t in topic])
        if with_users:
            write(os.path.join(d, "user_profile.json"), "user_id",
                  [f"This user likes {words[topic[i]]}." for i in (rnd.randrange(n_items) for _ in range(n_users))])


if __name__ == "__main__" and len(sys.argv) > 1:
    make_datasets(os.path.join(sys.argv[1], "train"))
