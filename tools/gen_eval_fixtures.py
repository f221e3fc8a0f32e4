#!/usr/bin/python3
"""gen_eval_fixtures.py — regenerate tests/fixtures/eval/ (the evaluation tests' tiny
dataset in the EasyRec release layout). Run from the repo root with Debian's
python3-scipy / python3-numpy:

    /usr/bin/python3 tools/gen_eval_fixtures.py tests/fixtures/eval

tiny/ — 4 users x 6 items, small enough to rank by hand (tests/test_eval.c does):
  trn_mat.pkl   coo_matrix, protocol 4   u0:{0}  u1:{1,2}  u2:{}  u3:{5}
  val_mat.pkl   csr_matrix, protocol 2   u0:{1}
  tst_mat.pkl   coo_matrix, protocol 5   u0:{2,4}  u1:{0}  u3:{3,4}   (u2: none -> not evaluated)
  U.npy (4, 2)  users 0..2 = (1, 0), user 3 = (-1, 0)
  I.npy (6, 2)  item i = (x_i, 0), x = 0.6 0.45 0.45 0.3 0.2 0.1 (items 1 and 2 tie)
  item_profile.json, user_profile.json                      set "original"
  diverse_profile/diverse_{item,user}_profile_0.json         set "diverse0"
  diverse_profile/diverse_item_profile_1.json                set "diverse1" (no user text)
  Profiles are short English texts; ids are written out of order on purpose.
bad/ — inputs that must fail with a clear error:
  shape_tst_mat.pkl  a (5, 7) matrix (shape differs from tiny's (4, 6))
  not_a_matrix.pkl   a pickled dict
  item_profile_short.json  5 profiles for 6 items
"""
import json
import os
import pickle
import sys

import numpy as np
import scipy.sparse as sp

N_USERS, N_ITEMS = 4, 6


def coo(pairs):
    r = np.array([p[0] for p in pairs], dtype=np.int32)
    c = np.array([p[1] for p in pairs], dtype=np.int32)
    return sp.coo_matrix((np.ones(len(pairs)), (r, c)), shape=(N_USERS, N_ITEMS))


def dump(obj, path, protocol):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


ITEMS = [
    "A classic wooden chess set with hand-carved pieces.",
    "Running shoes made for long distance road races.",
    "A trail running backpack with a water bladder.",
    "An acoustic guitar for beginners, with spare strings.",
    "Noise-cancelling headphones for music lovers.",
    "A cookbook of quick vegetarian dinners.",
]
USERS = [
    "Enjoys running and outdoor sports.",
    "Plays board games and chess on weekends.",
    "Listens to a lot of music.",
    "Likes cooking and playing guitar.",
]


def write_jsonl(path, key, texts, order):
    with open(path, "w", encoding="utf-8") as f:
        for i in order:
            f.write(json.dumps({key: i, "profile": texts[i]}) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/eval"
    tiny, bad = os.path.join(out, "tiny"), os.path.join(out, "bad")
    os.makedirs(os.path.join(tiny, "diverse_profile"), exist_ok=True)
    os.makedirs(bad, exist_ok=True)
    # tiny/ files carry a ".in" suffix (tools/stage_fixtures.sh strips it for the tests), so
    # nothing committed looks like release data

    def in_tiny(path):
        return path + ".in"
    dump(coo([(0, 0), (1, 1), (1, 2), (3, 5)]), in_tiny(os.path.join(tiny, "trn_mat.pkl")), 4)
    dump(coo([(0, 1)]).tocsr(), in_tiny(os.path.join(tiny, "val_mat.pkl")), 2)
    dump(coo([(0, 2), (0, 4), (1, 0), (3, 4), (3, 3)]), in_tiny(os.path.join(tiny, "tst_mat.pkl")), 5)
    U = np.array([[1, 0], [1, 0], [1, 0], [-1, 0]], dtype=np.float32)
    x = np.array([0.6, 0.45, 0.45, 0.3, 0.2, 0.1], dtype=np.float32)
    I = np.stack([x, np.zeros_like(x)], axis=1).astype(np.float32)
    with open(in_tiny(os.path.join(tiny, "U.npy")), "wb") as f:
        np.save(f, U)
    with open(in_tiny(os.path.join(tiny, "I.npy")), "wb") as f:
        np.save(f, I)
    order_i, order_u = [3, 0, 5, 1, 4, 2], [2, 0, 3, 1]
    write_jsonl(in_tiny(os.path.join(tiny, "item_profile.json")), "item_id", ITEMS, order_i)
    write_jsonl(in_tiny(os.path.join(tiny, "user_profile.json")), "user_id", USERS, order_u)
    d = os.path.join(tiny, "diverse_profile")
    write_jsonl(in_tiny(os.path.join(d, "diverse_item_profile_0.json")), "item_id", [t.upper() for t in ITEMS], order_i)
    write_jsonl(in_tiny(os.path.join(d, "diverse_user_profile_0.json")), "user_id", [t.upper() for t in USERS], order_u)
    write_jsonl(in_tiny(os.path.join(d, "diverse_item_profile_1.json")), "item_id", [t.lower() for t in ITEMS], order_i)
    dump(sp.coo_matrix((np.ones(1), (np.array([4]), np.array([6]))), shape=(5, 7)),
         os.path.join(bad, "shape_tst_mat.pkl"), 4)
    dump({"row": [0], "col": [1]}, os.path.join(bad, "not_a_matrix.pkl"), 4)
    write_jsonl(os.path.join(bad, "item_profile_short.json"), "item_id", ITEMS, [0, 1, 2, 3, 4])


if __name__ == "__main__":
    main()
