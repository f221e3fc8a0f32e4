"""Tests of the easyrec Python package against the easyrec CLI (run by tests/test_python.c with
/usr/bin/python3; EASYREC_LIB and EASYREC_BIN point at the build). Needs numpy; a model is made
with `easyrec init` from ../shared/vocab (tests that encode are skipped without it)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import easyrec  # noqa: E402

BIN = os.environ.get("EASYREC_BIN", "build/easyrec")
VOCAB = "../shared/vocab/roberta-base"
TEXTS = ["a quiet thriller set in Oslo", "space opera with robots and a long war", "", "日本語 テキスト \u00e9t\u00e9",
         "cooking " * 300, "x", "User likes jazz, vinyl records and old cameras."] * 5
TMP = tempfile.mkdtemp(prefix="easyrec-py-")
MODEL = os.path.join(TMP, "model")


def run(*args, **kw):
    return subprocess.run([BIN] + list(args), check=True, capture_output=True, **kw)


def setUpModule():
    if os.path.exists(os.path.join(VOCAB, "vocab.json")):
        run("init", "--vocab", VOCAB, "--output", MODEL, "--layers", "2", "--hidden", "64", "--heads", "2", "--ffn",
            "128")
    with open(os.path.join(TMP, "in.txt"), "w") as f:
        f.write("\n".join(t.replace("\n", " ") for t in TEXTS) + "\n")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def need_model(t):
    if not os.path.isdir(MODEL):
        t.skipTest("../shared/vocab absent: no model")


def cli_encode(*opts):
    out = os.path.join(TMP, "cli.npy")
    run("encode", "--model", MODEL, "--text", "--input", os.path.join(TMP, "in.txt"), "--output", out, "--quiet", *opts)
    return np.load(out)


class Encode(unittest.TestCase):
    def test_bit_identical_to_cli(self):
        need_model(self)
        m = easyrec.Model(MODEL)
        for kw, opts in [({}, []), ({"max_length": 8}, ["--max-length", "8"]),
                         ({"normalize": False}, ["--no-normalize"]), ({"pooling": "cls"}, ["--pooling", "cls"]),
                         ({"batch_size": 3, "threads": 2}, ["--batch-size", "3", "--threads", "2"])]:
            e = m.encode(TEXTS, **kw)
            r = cli_encode(*opts)
            self.assertEqual(e.dtype, np.float32)
            self.assertEqual(e.shape, (len(TEXTS), m.dim))
            self.assertTrue(np.array_equal(e.view(np.uint32), r.view(np.uint32)), "differs from the CLI with %s" % kw)
        one = m.encode(TEXTS[0])
        self.assertEqual(one.shape, (m.dim,))
        self.assertEqual(m.encode([]).shape, (0, m.dim))

    def test_progress_callback(self):
        need_model(self)
        m = easyrec.Model(MODEL)
        e = m.encode(TEXTS, show_progress=True, batch_size=4)
        self.assertTrue(np.array_equal(e, m.encode(TEXTS)))

    def test_threads_concurrently_same_results(self):
        need_model(self)
        m = easyrec.Model(MODEL)
        ref = m.encode(TEXTS, threads=1)
        res, errs = [None] * 6, []

        def work(i):
            try:
                res[i] = m.encode(TEXTS, threads=1 + i % 2, batch_size=1 + i)
            except Exception as e:  # pragma: no cover
                errs.append(e)

        ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errs, [])
        for r in res:
            self.assertTrue(np.array_equal(r.view(np.uint32), ref.view(np.uint32)))

    def test_tokenize_as_cli(self):
        need_model(self)
        m = easyrec.Model(MODEL)
        lines = [t.replace("\n", " ") for t in TEXTS[:7]]
        p = run("tokenize", "--model", MODEL, "--max-length", "16", input="\n".join(lines).encode() + b"\n")
        want = [json.loads(x) for x in p.stdout.decode().splitlines()]
        self.assertEqual(m.tokenize(lines, max_length=16), want)
        self.assertEqual(m.tokenize(lines[0], max_length=16), want[0])


class Errors(unittest.TestCase):
    def test_missing_directory(self):
        with self.assertRaises(easyrec.Error) as cm:
            easyrec.Model(os.path.join(TMP, "nope"))
        self.assertIn("config.json", str(cm.exception))

    def test_repo_id_not_cached_names_pull(self):
        os.environ["HF_HUB_CACHE"] = os.path.join(TMP, "empty-cache")
        try:
            with self.assertRaises(easyrec.Error) as cm:
                easyrec.Model("org/absent-model")
        finally:
            del os.environ["HF_HUB_CACHE"]
        self.assertIn("easyrec pull org/absent-model", str(cm.exception))

    def test_bad_arguments(self):
        u = np.eye(3, dtype=np.float32)
        with self.assertRaises(easyrec.Error) as cm:
            easyrec.recommend(u, u, k=4)
        self.assertIn("k = 4", str(cm.exception))
        with self.assertRaises(ValueError):
            easyrec.recommend(u, np.eye(4, dtype=np.float32)[:, :2], k=1)
        with self.assertRaises(ValueError):
            easyrec.evaluate(u, u, test=[[0], [5], []])
        if os.path.isdir(MODEL):
            with self.assertRaises(TypeError):
                easyrec.Model(MODEL).encode([1, 2])


class Rank(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(7)
        self.U = rng.standard_normal((40, 16)).astype(np.float32)
        self.I = rng.standard_normal((120, 16)).astype(np.float32)
        self.train = [sorted(rng.choice(120, size=rng.integers(0, 6), replace=False).tolist()) for _ in range(40)]
        self.test = [sorted(set(rng.choice(120, size=rng.integers(0, 4), replace=False).tolist()) - set(t))
                     for t in self.train]

    def test_recommend_brute_force(self):
        idx, sc = easyrec.recommend(self.U, self.I, k=10, exclude=self.train)
        S = self.U.astype(np.float64) @ self.I.astype(np.float64).T
        for u in range(40):
            s = S[u].copy()
            s[self.train[u]] = -np.inf
            want = np.argsort(-s, kind="stable")[:10]
            self.assertEqual(idx[u].tolist(), want.tolist())
            self.assertTrue(np.allclose(sc[u], s[want], atol=1e-5))
            self.assertFalse(set(idx[u].tolist()) & set(self.train[u]))

    def test_evaluate_as_cli(self):
        d = os.path.join(TMP, "ev")
        os.makedirs(d, exist_ok=True)
        for name, rows in (("train", self.train), ("test", self.test)):
            with open(os.path.join(d, name + ".tsv"), "w") as f:
                for u, r in enumerate(rows):
                    for i in r:
                        f.write("%d\t%d\n" % (u, i))
        # ids are dense when every user and item appears; pin the ranges with the corners
        with open(os.path.join(d, "train.tsv"), "a") as f:
            f.write("39\t119\n0\t0\n")
        self.train[39] = sorted(set(self.train[39]) | {119})
        self.train[0] = sorted(set(self.train[0]) | {0})
        self.test[39] = sorted(set(self.test[39]) - {119})
        self.test[0] = sorted(set(self.test[0]) - {0})
        np.save(os.path.join(d, "U.npy"), self.U)
        np.save(os.path.join(d, "I.npy"), self.I)
        p = run("eval", "--user-emb", os.path.join(d, "U.npy"), "--item-emb", os.path.join(d, "I.npy"), "--train",
                os.path.join(d, "train.tsv"), "--test", os.path.join(d, "test.tsv"), "--k", "5,10,20", "--json",
                "--quiet")
        cli = json.loads(p.stdout)
        py = easyrec.evaluate(self.U, self.I, test=self.test, train=self.train, ks=(5, 10, 20))
        self.assertEqual(py["n_users"], cli["n_users"])
        for k in (5, 10, 20):
            for m in ("recall@%d" % k, "ndcg@%d" % k):
                # the CLI prints 15 significant digits
                self.assertEqual(float("%.15g" % py[m]), cli["mean"][m], m)


class Install(unittest.TestCase):
    def test_pip_install(self):
        import importlib.util
        if not importlib.util.find_spec("pip") or not importlib.util.find_spec("setuptools"):
            self.skipTest("pip or setuptools missing")
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        tgt = os.path.join(TMP, "site")
        work = os.path.join(TMP, "src")
        shutil.copytree(here, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                        "--no-build-isolation", "--target", tgt, work], check=True, capture_output=True)
        code = "import easyrec, sys; print(easyrec.__file__); print(easyrec.version())"
        p = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=TMP,
                           env=dict(os.environ, PYTHONPATH=tgt, EASYREC_LIB=os.path.abspath(easyrec._lib.lib._name)))
        path, ver = p.stdout.decode().split()
        self.assertTrue(path.startswith(tgt))
        self.assertEqual(ver, easyrec.version())


if __name__ == "__main__":
    unittest.main(verbosity=2)
