"""easyrec — EasyRec (arXiv 2408.08821) text-embedding recommendation, over libeasyrec.so.

    import easyrec
    m = easyrec.Model("hkuds/easyrec-roberta-large")      # a directory or a pulled org/name
    U = m.encode(user_profiles)                           # np.ndarray [n, D] float32, L2-normalised
    I = m.encode(item_profiles)
    idx, scores = easyrec.recommend(U, I, k=10, exclude=train_items)
    easyrec.evaluate(U, I, test=test_items, train=train_items)   # {"recall@10": ..., ...}

The library is found through $EASYREC_LIB, the source tree's build/libeasyrec.so, or the
system's libeasyrec.so.0 (make install). Encoding releases the GIL (ctypes) and runs on
`threads` native threads; a Model may be shared by Python threads. Errors raise easyrec.Error
with easyrec's message.
"""
import os
import sys
import threading
from ctypes import POINTER, byref, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_void_p, \
    create_string_buffer

import numpy as np

from . import _lib
from ._lib import Error

__all__ = ["Model", "Error", "pull", "recommend", "evaluate", "version", "runtime_init", "__version__"]


def version():
    """Version of the loaded libeasyrec ("0.3.0")."""
    return _lib.version().decode()


__version__ = version()


def runtime_init():
    """What the easyrec CLI does first: OpenBLAS to one thread and its idle worker threads
    stopped, so that easyrec's own worker threads do not oversubscribe the cores on CPUs where
    it multiplies through OpenBLAS (no AVX-512). Process-wide (NumPy's OpenBLAS too), hence
    never done implicitly; call it once before any other thread uses BLAS."""
    _lib.runtime_init()

_POOLING = {None: 0, "default": 0, "easyrec": 1, "cls": 2, "mean": 3}


def _default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pull(repo_id, revision=None, cache_dir=None, include=None, endpoint=None, token=None, offline=False,
         show_progress=False):
    """Download a Hub model repository into the huggingface_hub cache (as `easyrec pull`);
    returns the snapshot directory. include: a glob or a list of globs."""
    o = _lib.PullOpts()
    _lib.pull_opts_init(byref(o))
    keep = []

    def s(v):
        if v is None:
            return None
        b = v.encode()
        keep.append(b)
        return b

    o.revision, o.cache_dir, o.endpoint, o.token = s(revision), s(cache_dir), s(endpoint), s(token)
    if include is not None:
        o.include = s(include if isinstance(include, str) else ",".join(include))
    o.offline = 1 if offline else 0
    if show_progress:
        def bar(_user, name, done, total):
            frac = done / total if total else 0
            sys.stderr.write("\r%-28.28s %5.1f%% %9.1f MB" % (name.decode(errors="replace"), 100 * frac, done / 1e6))
            if total and done >= total:
                sys.stderr.write("\n")
        o.progress = _lib.PULL_PROGRESS(bar)
        keep.append(o.progress)
    out = create_string_buffer(4096)
    _lib.check(_lib.pull(repo_id.encode(), byref(o), out, len(out)))
    return out.value.decode()


class Model:
    """An EasyRec / RoBERTa / BERT encoder. path_or_repo_id: a Hugging Face model directory, or
    "org/name" ("org/name@revision") already in the Hub cache (see easyrec.pull); with
    pull=True a repo id missing from the cache is downloaded first."""

    def __init__(self, path_or_repo_id, pull=False):
        path = os.fspath(path_or_repo_id)
        if pull and not os.path.isdir(path):
            repo, _, rev = path.partition("@")
            globals()["pull"](repo, revision=rev or None)
        h = c_void_p()
        _lib.check(_lib.model_load(path.encode(), byref(h)))
        self._h = h
        self.path = path
        self.dim = _lib.model_dim(h)
        self._local = threading.local()
        self._ctxs = []
        self._lock = threading.Lock()

    def close(self):
        """Free the model (also done when it is garbage collected)."""
        h, self._h = getattr(self, "_h", None), None
        for c in getattr(self, "_ctxs", []):
            _lib.ctx_free(c)
        self._ctxs = []
        if h:
            _lib.model_free(h)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ctx(self):
        # one scratch context per calling thread (a context must not be used by two at once)
        c = getattr(self._local, "ctx", None)
        if c is None:
            if not self._h:
                raise Error(-4, "the model was closed")
            c = _lib.ctx_new(self._h)
            if not c:
                raise Error(-3, "out of memory creating an encoding context")
            with self._lock:
                self._ctxs.append(c)
            self._local.ctx = c
        return c

    def encode(self, texts, batch_size=None, max_length=512, normalize=True, show_progress=False, pooling=None,
               threads=None, batch_tokens=None):
        """Embeddings of texts: np.ndarray [n, D] float32 (a single str gives [D]), row i for
        texts[i], identical to `easyrec encode` with the same options. max_length counts the
        special tokens (<s> </s>); threads defaults to all cores, as the CLI."""
        single = isinstance(texts, str)
        if single:
            texts = [texts]
        data = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError("texts[%d] is %s, expected str" % (i, type(t).__name__))
            data.append(t.encode("utf-8", "surrogatepass"))
        n = len(data)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out[0] if single else out
        o = _lib.EncodeOpts()
        _lib.encode_opts_init(byref(o))
        o.max_length = int(max_length) if max_length else 0
        o.batch_size = int(batch_size) if batch_size else 0
        o.batch_tokens = int(batch_tokens) if batch_tokens else 0
        o.threads = int(threads) if threads else _default_threads()
        if pooling not in _POOLING:
            raise ValueError("pooling must be one of easyrec, cls, mean")
        o.pooling = _POOLING[pooling]
        o.no_normalize = 0 if normalize else 1
        if show_progress:
            def bar(_user, done, total):
                w = 30
                fill = int(w * done / total) if total else w
                sys.stderr.write("\r[%s%s] %d/%d" % ("#" * fill, " " * (w - fill), done, total))
                if done >= total:
                    sys.stderr.write("\n")
            o.progress = _lib.PROGRESS(bar)
        ptrs = (c_char_p * n)(*data)
        lens = (c_size_t * n)(*map(len, data))
        rc = _lib.encode(self._ctx(), ptrs, lens, n, byref(o), out.ctypes.data_as(POINTER(c_float)))
        _lib.check(rc)
        return out[0] if single else out

    def tokenize(self, texts, max_length=512):
        """Token ids (specials included, truncated to max_length as encode does) of each text:
        a list of lists of int (a single str gives one list)."""
        tok = _lib.model_tokenizer(self._h)
        if not tok:
            raise Error(-4, "%s has no tokenizer files" % self.path)
        single = isinstance(texts, str)
        res = []
        cap = 512
        buf = (c_int32 * cap)()
        for t in [texts] if single else texts:
            b = t.encode("utf-8", "surrogatepass")
            while True:
                n = _lib.tokenize(tok, b, len(b), int(max_length or 0), buf, cap)
                if n < 0:
                    _lib.check(n)
                if n <= cap:
                    break
                cap = n
                buf = (c_int32 * cap)()
            res.append(list(buf[:n]))
        return res[0] if single else res


def _emb(x, name):
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError("%s must be a 2-d array [n, D], got shape %s" % (name, a.shape))
    return a


def _csr(rows, n_rows, n_cols, name):
    """CSR (ptr int64, idx int32) of per-row item ids from a scipy sparse matrix or a sequence of
    iterables; ids sorted and deduplicated."""
    if rows is None:
        return None
    if hasattr(rows, "tocsr"):
        m = rows.tocsr()
        if m.shape[0] != n_rows:
            raise ValueError("%s has %d rows, expected %d" % (name, m.shape[0], n_rows))
        rows = [m.indices[m.indptr[r]:m.indptr[r + 1]] for r in range(n_rows)]
    if len(rows) != n_rows:
        raise ValueError("%s has %d rows, expected %d" % (name, len(rows), n_rows))
    idx = [np.unique(np.asarray(list(r) if not isinstance(r, np.ndarray) else r, dtype=np.int64)) for r in rows]
    for r, a in enumerate(idx):
        if a.size and (a[0] < 0 or a[-1] >= n_cols):
            raise ValueError("%s row %d has item ids outside 0..%d" % (name, r, n_cols - 1))
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([a.size for a in idx])
    flat = np.concatenate(idx).astype(np.int32) if idx else np.zeros(0, np.int32)
    return ptr, np.ascontiguousarray(flat)


def _p(a, t):
    return a.ctypes.data_as(POINTER(t)) if a is not None else None


def recommend(user_emb, item_emb, k=10, exclude=None, threads=None):
    """Top-k items per user by dot product: (indices int64 [n_users, k], scores float32 [n_users, k]),
    best first, ties by lower item index. exclude: per-user item ids (scipy sparse matrix or list of
    lists) never recommended (ranked last with score -inf when fewer than k others remain)."""
    U, I = _emb(user_emb, "user_emb"), _emb(item_emb, "item_emb")
    if U.shape[1] != I.shape[1]:
        raise ValueError("user_emb has width %d, item_emb %d" % (U.shape[1], I.shape[1]))
    k = int(k)
    ex = _csr(exclude, U.shape[0], I.shape[0], "exclude")
    idx = np.empty((U.shape[0], k), dtype=np.int32)
    sc = np.empty((U.shape[0], k), dtype=np.float32)
    _lib.check(_lib.topk(_p(U, c_float), U.shape[0], _p(I, c_float), I.shape[0], U.shape[1], k,
                         _p(ex[0], c_int64) if ex else None, _p(ex[1], c_int32) if ex else None,
                         int(threads) if threads else _default_threads(), _p(idx, c_int32), _p(sc, c_float)))
    return idx.astype(np.int64), sc


def evaluate(user_emb, item_emb, test, train=None, ks=(10, 20), threads=None):
    """Zero-shot full-ranking Recall@K / NDCG@K exactly as `easyrec eval --user-emb --item-emb`
    (users with >= 1 test item, their train items masked). test / train: per-user item ids
    (scipy sparse matrices or lists of lists). Returns {"recall@10": ..., "ndcg@10": ..., ...,
    "n_users": evaluated users}."""
    U, I = _emb(user_emb, "user_emb"), _emb(item_emb, "item_emb")
    if U.shape[1] != I.shape[1]:
        raise ValueError("user_emb has width %d, item_emb %d" % (U.shape[1], I.shape[1]))
    ks = [int(k) for k in ks]
    te = _csr(test, U.shape[0], I.shape[0], "test")
    tr = _csr(train, U.shape[0], I.shape[0], "train")
    rec = (c_double * len(ks))()
    ndcg = (c_double * len(ks))()
    ne = c_int64()
    _lib.check(_lib.evaluate(_p(U, c_float), U.shape[0], _p(I, c_float), I.shape[0], U.shape[1],
                             _p(te[0], c_int64), _p(te[1], c_int32),
                             _p(tr[0], c_int64) if tr else None, _p(tr[1], c_int32) if tr else None,
                             (c_int * len(ks))(*ks), len(ks), int(threads) if threads else _default_threads(),
                             rec, ndcg, byref(ne)))
    res = {}
    for q, k in enumerate(ks):
        res["recall@%d" % k] = rec[q]
        res["ndcg@%d" % k] = ndcg[q]
    res["n_users"] = ne.value
    return res
