#!/usr/bin/python3
"""gen_loader_fixtures.py — regenerate tests/fixtures/loaders/* (the checkpoint, pickle and
.npy readers' test inputs). Run from the repo root with Debian's python3-torch/scipy/numpy:

    /usr/bin/python3 tools/gen_loader_fixtures.py tests/fixtures/loaders [fuzz/seeds]

(with the second argument it also rewrites the fuzz targets' seed corpora)

Files (all a few KB):
  torch_sd.bin         torch.save of a module state_dict (OrderedDict + _metadata BUILD) plus
                       fp16/bf16/f64/int64 tensors, views sharing one storage (transpose,
                       storage_offset, step slice), an nn.Parameter, an empty and a 0-d tensor
                       and a non-tensor value (skipped by the reader)
  torch_v2style.bin    hand-built like torch >= 2.1 writes: top folder "archive/", a
                       "byteorder" record, plus _rebuild_tensor_v3 (trailing dtype),
                       _rebuild_parameter_with_state and _rebuild_from_type_v2 wrappers
                       (names torch 1.13 lacks, pickled anyway) and one storage type given
                       as a dtype (torch.float16) rather than a class (torch.HalfStorage)
  st.safetensors       written by hand (8-byte header length + JSON + data) with F32, F16,
                       BF16, I64, empty and 0-d tensors and a __metadata__ entry
  {coo,csr}_p{2,3,4,5}.pkl  the same 5x7 scipy.sparse matrix pickled with protocols 2..5
  csc_p4.pkl, coo_i64_p4.pkl, coo_coords_p4.pkl  CSC, int64 indices, scipy>=1.13 'coords'
  arr_f4.npy, arr_f8.npy, arr_f2.npy, arr_v2.npy, arr_v3.npy, arr_1d.npy  np.save outputs
  expected.json        what the C tests compare against: per tensor dtype/shape/values
                       (row-major, as float), per sparse pickle shape/row/col/data (COO,
                       row-major order), per .npy shape/values
The values are fixed (a seeded generator), so regenerating gives identical files unless
torch/numpy change their output bytes.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import scipy.sparse as sp
import torch


def vals(t):
    return [float(x) for x in t.detach().to(torch.float64).reshape(-1).tolist()]


def tensor_entry(t):
    return {"dtype": {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.float64: "F64", torch.int64: "I64"}[t.dtype],
            "shape": list(t.shape), "values": vals(t)}


def torch_state_dict():
    g = torch.Generator().manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    sd = m.state_dict()  # OrderedDict with _metadata: pickled with BUILD
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 4
    sd["base"] = base
    sd["view_t"] = base.t()             # strides (1, 6)
    sd["view_off"] = base[1:3]          # storage_offset 6
    sd["view_step"] = base[:, ::2]      # strides (6, 2)
    sd["view_elem"] = base[2, 3:5]      # offset 15, 1-d
    sd["half"] = torch.tensor([1.5, -2.0, 6e-8, 65504.0, 0.1], dtype=torch.float16)
    sd["bf16"] = (torch.randn(2, 3, generator=g)).to(torch.bfloat16)
    sd["f64"] = torch.tensor([[1.0 / 3, -2.5]], dtype=torch.float64)
    sd["ids"] = torch.arange(5, dtype=torch.int64).unsqueeze(0)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar"] = torch.tensor(3.5)
    sd["note"] = 7  # not a tensor: skipped
    return sd


# ---- torch >= 2.1 style archive, pickled by hand -----------------------------------------

class Storage:
    def __init__(self, key, dtype, data):
        self.key, self.dtype, self.data = key, dtype, data


class FakeTensor:
    """Pickles as fn(Storage, offset, size, stride, requires_grad, OrderedDict()[, dtype])."""

    def __init__(self, fn, storage, offset, size, stride, extra=()):
        self.args = (fn, storage, offset, size, stride, extra)

    def __reduce__(self):
        fn, st, off, size, stride, extra = self.args
        return fn, (st, off, tuple(size), tuple(stride), False, collections.OrderedDict()) + tuple(extra)


class Wrapped:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def fake_torch_fn(name):
    def f(*a):
        raise RuntimeError("never called")
    f.__module__, f.__name__, f.__qualname__ = "torch._utils", name, name
    setattr(torch._utils, name, f)
    return f


class V2Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            numel = obj.data.numel()
            return ("storage", obj.dtype, obj.key, "cpu", numel)
        return None


def storage_bytes(t):
    """Row-major little-endian bytes of t (numpy has no bfloat16: reinterpret as int16)."""
    t = t.contiguous().reshape(-1)
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def torch_v2style(path):
    g = torch.Generator().manual_seed(2)
    v3, pws, rft = (fake_torch_fn(n) for n in
                    ("_rebuild_tensor_v3", "_rebuild_parameter_with_state", "_rebuild_from_type_v2"))
    v2 = torch._utils._rebuild_tensor_v2
    w = torch.randn(3, 4, generator=g).to(torch.bfloat16)
    h = torch.randn(6, generator=g).to(torch.float16)
    st_w, st_h = Storage("0", torch.BFloat16Storage, w), Storage("1", torch.float16, h)
    sd = collections.OrderedDict()
    sd["w"] = FakeTensor(v2, st_w, 0, [3, 4], [4, 1])
    sd["w_t"] = FakeTensor(v3, st_w, 0, [4, 3], [1, 4], [torch.bfloat16])
    sd["h_tail"] = Wrapped(pws, (FakeTensor(v2, st_h, 2, [4], [1]), False, collections.OrderedDict(), {}))
    sd["h_sub"] = Wrapped(rft, (v2, torch.Tensor, (st_h, 1, (2, 2), (1, 2), False, collections.OrderedDict()), {}))
    buf = io.BytesIO()
    V2Pickler(buf, protocol=2).dump(sd)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in (("data.pkl", buf.getvalue()), ("byteorder", b"little"),
                           ("data/0", storage_bytes(w)), ("data/1", storage_bytes(h)), ("version", b"3\n")):
            z.writestr(zipfile.ZipInfo("archive/" + name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    hf = h.float()
    return {"w": tensor_entry(w), "w_t": tensor_entry(w.t()), "h_tail": tensor_entry(h[2:6]),
            "h_sub": {"dtype": "F16", "shape": [2, 2],
                      "values": [float(hf[1]), float(hf[3]), float(hf[2]), float(hf[4])]}}


# ---- safetensors, by hand ------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
    for name, t in tensors.items():
        b = storage_bytes(t)
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def safetensors_fixture(path):
    g = torch.Generator().manual_seed(3)
    t = collections.OrderedDict()
    t["emb.weight"] = torch.randn(2, 3, generator=g)
    t["half"] = torch.tensor([0.5, -1.0, 2.0, 1e-7], dtype=torch.float16)
    t["bf"] = torch.randn(2, 2, generator=g).to(torch.bfloat16)
    t["pos_ids"] = torch.arange(3, dtype=torch.int64)
    t["empty"] = torch.zeros(0, 4)
    t["scalar"] = torch.tensor(-1.25)
    write_safetensors(path, t, {"format": "pt"})
    return {k: tensor_entry(v) for k, v in t.items()}


# ---- scipy sparse and numpy ------------------------------------------------------------------

def sparse_fixtures(out):
    rows = np.array([0, 1, 1, 3, 4, 4], dtype=np.int32)
    cols = np.array([2, 0, 6, 3, 1, 5], dtype=np.int32)
    data = np.array([1.0, 2.0, 0.5, -3.0, 1.0, 4.25])
    coo = sp.coo_matrix((data, (rows, cols)), shape=(5, 7))
    exp = {"shape": [5, 7], "row": rows.tolist(), "col": cols.tolist(), "data": data.tolist()}
    files = {}
    for p in (2, 3, 4, 5):
        files["coo_p%d.pkl" % p] = pickle.dumps(coo, protocol=p)
        files["csr_p%d.pkl" % p] = pickle.dumps(coo.tocsr(), protocol=p)
    files["csc_p4.pkl"] = pickle.dumps(coo.tocsc(), protocol=4)
    c64 = sp.coo_matrix((data, (rows, cols)), shape=(5, 7))
    c64.row, c64.col = rows.astype(np.int64), cols.astype(np.int64)  # scipy would downcast
    assert c64.row.dtype == np.int64
    files["coo_i64_p4.pkl"] = pickle.dumps(c64, protocol=4)
    new = sp.coo_matrix.__new__(sp.coo_matrix)  # scipy >= 1.13 keeps (row, col) in 'coords'
    new.__dict__.update({"_shape": (5, 7), "maxprint": 50, "coords": (rows, cols), "data": data,
                         "has_canonical_format": False})
    files["coo_coords_p4.pkl"] = pickle.dumps(new, protocol=4)
    expected = {}
    for name, b in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b)
        m = pickle.loads(b) if name != "coo_coords_p4.pkl" else coo
        m = m.tocoo()
        expected[name] = {"shape": list(m.shape), "row": m.row.tolist(), "col": m.col.tolist(),
                          "data": m.data.tolist()}
    # csr/csc -> coo orders entries row-major resp. column-major; the reader does the same
    expected["coo_coords_p4.pkl"] = exp
    return expected


def npy_fixtures(out):
    a = (np.arange(12, dtype=np.float64).reshape(3, 4) - 5) / 8
    arrays = {"arr_f4.npy": (a.astype(np.float32), None), "arr_f8.npy": (a, None),
              "arr_f2.npy": (a.astype(np.float16), None), "arr_v2.npy": (a.astype(np.float32), (2, 0)),
              "arr_v3.npy": (a.astype(np.float32), (3, 0)),
              "arr_1d.npy": (np.array([1.5, -2.0, 0.25], dtype=np.float32), None)}
    expected = {}
    for name, (arr, ver) in arrays.items():
        with open(os.path.join(out, name), "wb") as f:
            np.lib.format.write_array(f, arr, version=ver)
        expected[name] = {"shape": list(arr.shape), "values": [float(x) for x in arr.reshape(-1)]}
    return expected


def fuzz_seeds(fix, out):
    """Seed corpora for fuzz/fuzz_*.c, from the fixtures (see each target's header)."""
    import shutil
    copies = {"fuzz_safetensors": ["st.safetensors"], "fuzz_npy": ["arr_f4.npy", "arr_f2.npy", "arr_v3.npy"],
              "fuzz_pickle": ["coo_p2.pkl", "csr_p5.pkl", "coo_coords_p4.pkl"]}
    for target, names in copies.items():
        os.makedirs(os.path.join(out, target), exist_ok=True)
        for n in names:
            shutil.copy(os.path.join(fix, n), os.path.join(out, target, n))
    with zipfile.ZipFile(os.path.join(fix, "torch_sd.bin")) as z:
        sd_pkl = z.read("torch_sd/data.pkl")
    with open(os.path.join(out, "fuzz_pickle", "torch_data.pkl"), "wb") as f:
        f.write(sd_pkl)
    # fuzz_torchbin: byte 0 even = a whole zip, odd = a data.pkl over storages 0..7 of 96 bytes
    os.makedirs(os.path.join(out, "fuzz_torchbin"), exist_ok=True)
    with open(os.path.join(fix, "torch_v2style.bin"), "rb") as f:
        v2 = f.read()
    with open(os.path.join(out, "fuzz_torchbin", "zip_v2style"), "wb") as f:
        f.write(b"\x00" + v2)
    v2fn, v3fn = torch._utils._rebuild_tensor_v2, getattr(torch._utils, "_rebuild_tensor_v3")
    s0 = Storage("0", torch.FloatStorage, torch.zeros(24))
    s1 = Storage("1", torch.HalfStorage, torch.zeros(48, dtype=torch.float16))
    s2 = Storage("2", torch.BFloat16Storage, torch.zeros(48, dtype=torch.bfloat16))
    sd = collections.OrderedDict()
    sd["a"] = FakeTensor(v2fn, s0, 0, [4, 6], [6, 1])
    sd["a_t"] = FakeTensor(v2fn, s0, 2, [3, 4], [1, 6])
    sd["h"] = FakeTensor(v3fn, s1, 8, [5, 8], [8, 1], [torch.float16])
    sd["p"] = Wrapped(torch._utils._rebuild_parameter, (FakeTensor(v2fn, s2, 0, [48], [1]), True,
                                                        collections.OrderedDict()))
    buf = io.BytesIO()
    V2Pickler(buf, protocol=2).dump(sd)
    with open(os.path.join(out, "fuzz_torchbin", "pkl_views"), "wb") as f:
        f.write(b"\x01" + buf.getvalue())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/loaders"
    os.makedirs(out, exist_ok=True)
    sd = torch_state_dict()
    torch.save(sd, os.path.join(out, "torch_sd.bin"))
    exp = {"torch_sd.bin": {k: tensor_entry(v) for k, v in sd.items() if isinstance(v, torch.Tensor)},
           "torch_v2style.bin": torch_v2style(os.path.join(out, "torch_v2style.bin")),
           "st.safetensors": safetensors_fixture(os.path.join(out, "st.safetensors")),
           "sparse": sparse_fixtures(out), "npy": npy_fixtures(out)}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(exp, f)
        f.write("\n")
    if len(sys.argv) > 2:
        fuzz_seeds(out, sys.argv[2])


if __name__ == "__main__":
    main()
