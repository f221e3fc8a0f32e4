"""ctypes binding of libeasyrec.so (include/easyrec.h). Internal: use the easyrec package."""
import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char, c_char_p, c_double, c_float, c_int,
                    c_int32, c_int64, c_size_t, c_uint64, c_void_p)


class Error(RuntimeError):
    """An easyrec failure; the message is easyrec's (easyrec_last_error), .code its status."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _candidates():
    env = os.environ.get("EASYREC_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    # python/easyrec/ inside the source tree: ../../build/libeasyrec.so
    yield os.path.join(here, "..", "..", "build", "libeasyrec.so")
    found = ctypes.util.find_library("easyrec")
    if found:
        yield found
    yield "libeasyrec.so.0"


def _load():
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append(path + ": not found")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise ImportError("easyrec: cannot load libeasyrec.so (set EASYREC_LIB to its path, build it with "
                      "`make`, or `make install` it): " + "; ".join(errors))


lib = _load()

PROGRESS = CFUNCTYPE(None, c_void_p, c_size_t, c_size_t)


class EncodeOpts(Structure):
    # the leading fields of easyrec_encode_opts; _tail leaves room for fields appended later
    # (easyrec_encode_opts_init fills them with their defaults)
    _fields_ = [("max_length", c_int), ("batch_tokens", c_int), ("batch_size", c_int), ("threads", c_int),
                ("pooling", c_int), ("no_normalize", c_int), ("progress", PROGRESS),
                ("progress_user", c_void_p), ("_tail", c_char * 256)]


PULL_PROGRESS = CFUNCTYPE(None, c_void_p, c_char_p, c_uint64, c_uint64)


class PullOpts(Structure):
    _fields_ = [("revision", c_char_p), ("cache_dir", c_char_p), ("endpoint", c_char_p), ("token", c_char_p),
                ("include", c_char_p), ("offline", c_int), ("progress", PULL_PROGRESS),
                ("progress_user", c_void_p), ("_tail", c_char * 256)]


def _sig(name, res, *args):
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


F = POINTER(c_float)
version = _sig("easyrec_version", c_char_p)
last_error = _sig("easyrec_last_error", c_char_p)
runtime_init = _sig("easyrec_runtime_init", None)
model_load = _sig("easyrec_model_load", c_int, c_char_p, POINTER(c_void_p))
model_free = _sig("easyrec_model_free", None, c_void_p)
model_dim = _sig("easyrec_model_dim", c_int, c_void_p)
model_tokenizer = _sig("easyrec_model_tokenizer", c_void_p, c_void_p)
ctx_new = _sig("easyrec_ctx_new", c_void_p, c_void_p)
ctx_free = _sig("easyrec_ctx_free", None, c_void_p)
encode_opts_init = _sig("easyrec_encode_opts_init", None, POINTER(EncodeOpts))
encode = _sig("easyrec_encode", c_int, c_void_p, POINTER(c_char_p), POINTER(c_size_t), c_size_t,
              POINTER(EncodeOpts), F)
tokenize = _sig("easyrec_tokenize", c_int, c_void_p, c_char_p, c_size_t, c_int, POINTER(c_int32), c_int)
pull_opts_init = _sig("easyrec_pull_opts_init", None, POINTER(PullOpts))
pull = _sig("easyrec_pull", c_int, c_char_p, POINTER(PullOpts), c_char_p, c_size_t)
resolve_model = _sig("easyrec_resolve_model", c_int, c_char_p, c_char_p, c_size_t)
I64 = POINTER(c_int64)
I32 = POINTER(c_int32)
topk = _sig("easyrec_topk", c_int, F, c_int64, F, c_int64, c_int, c_int, I64, I32, c_int, I32, F)
evaluate = _sig("easyrec_evaluate", c_int, F, c_int64, F, c_int64, c_int, I64, I32, I64, I32, POINTER(c_int),
                c_int, c_int, POINTER(c_double), POINTER(c_double), I64)


def check(rc):
    """Raise Error with easyrec's message for a non-zero status (same thread as the call)."""
    if rc < 0 or rc > 0:
        raise Error(rc, last_error().decode("utf-8", "replace"))
    return rc


__all__ = ["lib", "Error", "check", "EncodeOpts", "PullOpts", "PROGRESS", "PULL_PROGRESS", "byref"]
