#!/usr/bin/python3
"""gen_fixtures.py — regenerate tests/fixtures/models/* (run: make fixtures).

Each fixture is a small random model directory in Hugging Face layout plus reference.json
holding, for a fixed set of token-id sequences of mixed lengths, what tools/make_model.py's
HF-equivalent PyTorch forward computes on them as ONE right-padded batch (so easyrec's
unpadded, per-sequence computation is checked against the padded reference):
  seqs            list of id lists (specials included)
  hidden          per sequence, last-layer states flattened (T_i * H)
  pool_easyrec    tanh(mlp(h[0]))   (only when the checkpoint has mlp.*)
  pool_cls        h[0]
  pool_mean       masked mean
  mlm_logits_0    lm_head logits of sequence 0 (T_0 * V) when the checkpoint has lm_head.*
Weights stored in bf16/fp16 are rounded the same way before the reference runs, i.e. the
reference is PyTorch running the same upcast weights.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model import Cfg, Encoder, pad_batch, save_model  # noqa: E402

VARIANTS = [
    # name, cfg kwargs, format, dtype, state-dict kwargs
    ("roberta_st_f32", dict(model_type="roberta"), "safetensors", torch.float32,
     dict(prefix=True, mlp=True, lm_head=True)),
    ("roberta_bin_bf16", dict(model_type="roberta"), "bin", torch.bfloat16,
     dict(prefix=True, mlp=True, lm_head=True, buffers=True)),
    ("roberta_st_bf16", dict(model_type="roberta", layers=3, heads=2), "safetensors", torch.bfloat16,
     dict(prefix=True, mlp=True, lm_head=False, decoder_bias=False)),
    ("roberta_bin_f32_bare", dict(model_type="roberta"), "bin", torch.float32,
     dict(prefix=False, mlp=False, lm_head=False, pooler=True, buffers=True)),
    ("bert_st_f16", dict(model_type="bert"), "safetensors", torch.float16,
     dict(prefix=True, mlp=False, lm_head=False, pooler=True)),
]


def make_seqs(c: Cfg, gen):
    roberta = c.model_type == "roberta"
    bos, eos = (0, 2) if roberta else (101 % c.vocab, 102 % c.vocab)
    seqs = []
    max_real = c.max_pos - 2 if roberta else c.max_pos
    for n in (5, 17, 2, max_real, 9, 33, 1 if not roberta else 3):
        body = torch.randint(4, c.vocab, (max(n - 2, 0),), generator=gen).tolist()
        seqs.append(([bos] + body + [eos])[:n] if n >= 2 else [bos])
    if roberta:
        # a pad id inside a sequence: HF still attends to it (mask from the tokenizer) but its
        # position id is the padding index and later positions do not advance
        s = [bos] + torch.randint(4, c.vocab, (10,), generator=gen).tolist() + [eos]
        s[4] = c.pad
        seqs.append(s)
    return seqs


def main(out_root):
    for i, (name, ckw, fmt, dtype, sdkw) in enumerate(VARIANTS):
        gen = torch.Generator().manual_seed(1234 + i)
        c = Cfg(vocab=512, **ckw)
        enc = Encoder(c)
        enc.randomize(gen)
        enc.round_to(dtype)
        out = os.path.join(out_root, name)
        for fn in ("model.safetensors", "pytorch_model.bin"):
            if os.path.exists(os.path.join(out, fn)):
                os.remove(os.path.join(out, fn))
        save_model(enc, out, fmt=fmt, dtype=dtype, **sdkw)
        seqs = make_seqs(c, gen)
        ids, mask = pad_batch(seqs, c.pad)
        with torch.no_grad():
            h = enc(ids, mask)
            ref = {"seqs": seqs, "hidden": [h[b, :len(s)].reshape(-1).tolist() for b, s in enumerate(seqs)],
                   "pool_cls": enc.pool(h, mask, "cls").tolist(),
                   "pool_mean": enc.pool(h, mask, "mean").tolist()}
            if sdkw.get("mlp"):
                ref["pool_easyrec"] = enc.pool(h, mask, "easyrec").tolist()
            if sdkw.get("lm_head"):
                ref["mlm_logits_0"] = enc.mlm_logits(h[0:1, :len(seqs[0])]).reshape(-1).tolist()
        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump(ref, f)
        print(f"{name}: {fmt} {dtype} layers={c.layers} hidden={c.hidden} seqs={len(seqs)}")


if __name__ == "__main__":
    main(os.path.join(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures", "models"))
