#!/usr/bin/python3
"""make_model.py — random RoBERTa/BERT models in Hugging Face layout + a PyTorch reference.

Used by tools/gen_fixtures.py (test fixtures) and bench/ (benchmark models). Needs only
Debian's python3-torch (run with /usr/bin/python3); `transformers` is not available here, so
`Encoder` below re-implements HF's RobertaModel/BertModel forward (modeling_roberta.py,
transformers 4.40, eager attention) line for line in plain torch:
  * embeddings: word + token_type[0] + position; RoBERTa positions = cumsum(id != pad) *
    (id != pad) + pad (driven by token ids), BERT positions 0..T-1; LayerNorm(eps)
  * post-LN layers, additive key mask (1 - mask) * finfo(float32).min, exact erf GELU
  * poolers: easyrec = tanh(mlp.dense(h[:, 0])), cls = h[:, 0], mean = masked mean.

Checkpoint layouts written (like HF save_pretrained / torch.save):
  model.safetensors (written by hand: 8-byte LE header length + JSON + raw data) or
  pytorch_model.bin (torch.save zip format), fp32, fp16 or bf16, with or without the
  "roberta."/"bert." prefix, optional mlp.* (EasyRec head), lm_head.*, pooler.*, buffers.
"""
import json
import math
import os
import shutil
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class Cfg:
    def __init__(self, model_type="roberta", layers=2, hidden=32, heads=4, ffn=64, vocab=1000,
                 max_pos=66, type_vocab=None, eps=None, pad=None):
        self.model_type = model_type
        self.layers, self.hidden, self.heads, self.ffn = layers, hidden, heads, ffn
        self.vocab, self.max_pos = vocab, max_pos
        roberta = model_type == "roberta"
        self.type_vocab = type_vocab if type_vocab is not None else (1 if roberta else 2)
        self.eps = eps if eps is not None else (1e-5 if roberta else 1e-12)
        self.pad = pad if pad is not None else (1 if roberta else 0)

    def config_json(self):
        roberta = self.model_type == "roberta"
        d = {
            "architectures": ["Easyrec"] if roberta else ["BertModel"],
            "model_type": self.model_type,
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.ffn,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": self.max_pos,
            "type_vocab_size": self.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": self.eps,
            "pad_token_id": self.pad,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
        }
        if roberta:
            d.update(bos_token_id=0, eos_token_id=2)
        return d


class Encoder(nn.Module):
    """HF RobertaModel/BertModel (add_pooling_layer=False) + EasyRec mlp + lm_head."""

    def __init__(self, c: Cfg):
        super().__init__()
        self.c = c
        H, I = c.hidden, c.ffn
        self.word = nn.Embedding(c.vocab, H)
        self.pos = nn.Embedding(c.max_pos, H)
        self.typ = nn.Embedding(c.type_vocab, H)
        self.emb_ln = nn.LayerNorm(H, eps=c.eps)
        self.q = nn.ModuleList(nn.Linear(H, H) for _ in range(c.layers))
        self.k = nn.ModuleList(nn.Linear(H, H) for _ in range(c.layers))
        self.v = nn.ModuleList(nn.Linear(H, H) for _ in range(c.layers))
        self.o = nn.ModuleList(nn.Linear(H, H) for _ in range(c.layers))
        self.ln1 = nn.ModuleList(nn.LayerNorm(H, eps=c.eps) for _ in range(c.layers))
        self.f1 = nn.ModuleList(nn.Linear(H, I) for _ in range(c.layers))
        self.f2 = nn.ModuleList(nn.Linear(I, H) for _ in range(c.layers))
        self.ln2 = nn.ModuleList(nn.LayerNorm(H, eps=c.eps) for _ in range(c.layers))
        self.mlp = nn.Linear(H, H)
        self.lm_dense = nn.Linear(H, H)
        self.lm_ln = nn.LayerNorm(H, eps=c.eps)
        self.lm_decoder = nn.Linear(H, c.vocab, bias=False)
        self.lm_bias = nn.Parameter(torch.zeros(c.vocab))
        self.pooler = nn.Linear(H, H)

    def randomize(self, gen, std=0.02, ln_noise=0.1):
        """Random weights: N(0, std) matrices, noisy biases and LayerNorms (so every term of
        the forward is exercised), padding row of the word table zeroed like HF init."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "ln" in name.split(".")[0] or name.startswith("emb_ln"):
                    if name.endswith("weight"):
                        p.copy_(1.0 + ln_noise * torch.randn(p.shape, generator=gen))
                    else:
                        p.copy_(ln_noise * torch.randn(p.shape, generator=gen))
                elif name.endswith("bias") or name == "lm_bias":
                    p.copy_(std * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(std * torch.randn(p.shape, generator=gen))
            self.word.weight[self.c.pad].zero_()

    def positions(self, ids):
        c = self.c
        if c.model_type == "roberta":
            m = (ids != c.pad).int()
            return (torch.cumsum(m, dim=1) * m).long() + c.pad
        return torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)

    def forward(self, ids, mask):
        """ids, mask: (B, T) long. Returns last hidden states (B, T, H)."""
        c = self.c
        B, T = ids.shape
        H, A = c.hidden, c.heads
        d = H // A
        x = self.word(ids) + self.typ(torch.zeros_like(ids)) + self.pos(self.positions(ids))
        x = self.emb_ln(x)
        add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for l in range(c.layers):
            def heads(t):
                return t.view(B, T, A, d).permute(0, 2, 1, 3)
            q, k, v = heads(self.q[l](x)), heads(self.k[l](x)), heads(self.v[l](x))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + add
            p = F.softmax(s, dim=-1)
            ctx = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(B, T, H)
            a = self.ln1[l](self.o[l](ctx) + x)
            f = self.f2[l](F.gelu(self.f1[l](a)))
            x = self.ln2[l](f + a)
        return x

    def pool(self, h, mask, kind):
        if kind == "easyrec":
            return torch.tanh(self.mlp(h[:, 0]))
        if kind == "cls":
            return h[:, 0]
        m = mask.unsqueeze(-1).float()
        return (h * m).sum(1) / m.sum(1)

    def mlm_logits(self, h):
        z = self.lm_ln(F.gelu(self.lm_dense(h)))
        return self.lm_decoder(z) + self.lm_bias

    def state_dict_hf(self, prefix=True, mlp=True, lm_head=True, pooler=False, buffers=False,
                      decoder_bias=True):
        """Tensors under the names HF/EasyRec checkpoints use."""
        c = self.c
        base = (c.model_type + ".") if prefix else ""
        sd = {}
        sd[base + "embeddings.word_embeddings.weight"] = self.word.weight
        sd[base + "embeddings.position_embeddings.weight"] = self.pos.weight
        sd[base + "embeddings.token_type_embeddings.weight"] = self.typ.weight
        sd[base + "embeddings.LayerNorm.weight"] = self.emb_ln.weight
        sd[base + "embeddings.LayerNorm.bias"] = self.emb_ln.bias
        if buffers:
            sd[base + "embeddings.position_ids"] = torch.arange(c.max_pos).unsqueeze(0)
            sd[base + "embeddings.token_type_ids"] = torch.zeros(1, c.max_pos, dtype=torch.long)
        for l in range(c.layers):
            p = f"{base}encoder.layer.{l}."
            for name, mod in (("attention.self.query", self.q[l]), ("attention.self.key", self.k[l]),
                              ("attention.self.value", self.v[l]), ("attention.output.dense", self.o[l]),
                              ("intermediate.dense", self.f1[l]), ("output.dense", self.f2[l])):
                sd[p + name + ".weight"] = mod.weight
                sd[p + name + ".bias"] = mod.bias
            sd[p + "attention.output.LayerNorm.weight"] = self.ln1[l].weight
            sd[p + "attention.output.LayerNorm.bias"] = self.ln1[l].bias
            sd[p + "output.LayerNorm.weight"] = self.ln2[l].weight
            sd[p + "output.LayerNorm.bias"] = self.ln2[l].bias
        if pooler:
            sd[base + "pooler.dense.weight"] = self.pooler.weight
            sd[base + "pooler.dense.bias"] = self.pooler.bias
        if mlp:
            sd["mlp.dense.weight"] = self.mlp.weight
            sd["mlp.dense.bias"] = self.mlp.bias
        if lm_head:
            sd["lm_head.dense.weight"] = self.lm_dense.weight
            sd["lm_head.dense.bias"] = self.lm_dense.bias
            sd["lm_head.layer_norm.weight"] = self.lm_ln.weight
            sd["lm_head.layer_norm.bias"] = self.lm_ln.bias
            sd["lm_head.decoder.weight"] = self.lm_decoder.weight
            sd["lm_head.bias"] = self.lm_bias
            if decoder_bias:
                sd["lm_head.decoder.bias"] = self.lm_bias  # the same tensor, as in HF
        return {k: v.detach() for k, v in sd.items()}

    def round_to(self, dtype):
        """Round every weight through dtype and back (what an upcast bf16 checkpoint holds)."""
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(p.to(dtype).float())


ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def write_safetensors(path, tensors):
    """safetensors: u64 LE header size, JSON header {name: {dtype, shape, data_offsets}}, data.
    Shared tensors are written once per name (HF save_pretrained drops duplicates; so do we)."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save_model(enc: Encoder, out_dir, fmt="safetensors", dtype=torch.float32, vocab_dir=None,
               **sd_kw):
    """Write config.json + weights (+ tokenizer files copied from vocab_dir) to out_dir.
    Returns the state dict as written (in dtype)."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = enc.c.config_json()
    cfg["torch_dtype"] = {torch.float32: "float32", torch.float16: "float16",
                          torch.bfloat16: "bfloat16"}[dtype]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    sd = enc.state_dict_hf(**sd_kw)
    # keep shared storage between tied names (lm_head.bias / lm_head.decoder.bias) like torch.save
    cast, out = {}, {}
    for k, v in sd.items():
        if v.dtype.is_floating_point:
            key = id(v)
            if key not in cast:
                cast[key] = v.to(dtype).clone()
            out[k] = cast[key]
        else:
            out[k] = v
    if fmt == "safetensors":
        st = {}
        for k, v in out.items():
            st[k] = v.clone() if k == "lm_head.decoder.bias" else v
        write_safetensors(os.path.join(out_dir, "model.safetensors"), st)
    else:
        torch.save(out, os.path.join(out_dir, "pytorch_model.bin"))
    if vocab_dir:
        for fn in ("vocab.json", "merges.txt", "vocab.txt", "tokenizer_config.json"):
            src = os.path.join(vocab_dir, fn)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(out_dir, fn))
    return out


def pad_batch(seqs, pad):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask
