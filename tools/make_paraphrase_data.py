#!/usr/bin/env python3
"""make_paraphrase_data.py [--eval] SRC_DATASET OUT_DIR — a paraphrase-matching set built
from one EasyRec dataset's item profiles: "user" i is item i described by its diverse
profile 0, its one training "interaction" is item i, whose text is diverse profile 1 (and
the original profile when present). Used by bench/quality_train.sh (PARAPHRASE=1) as extra
training data (docs/train.md "Training from scratch").
--eval: an evaluation set instead — user i's TEST item is item i (diverse profile 1 as
item_profile.json), its training and validation items are i+1 and i+2 (mod n), so
`easyrec eval --data OUT_DIR` measures how well a scorer finds an item's paraphrase.
Needs Debian python3-numpy and python3-scipy (the pickles are scipy coo_matrix, like the
release data)."""
import json, os, pickle, sys

import numpy as np
import scipy.sparse as sp


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    args = sys.argv[1:]
    evaluation = args[:1] == ["--eval"]
    if evaluation:
        args = args[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    src, out = args
    div = os.path.join(src, "diverse_profile")
    users = read(os.path.join(div, "diverse_item_profile_0.json"))
    items = read(os.path.join(div, "diverse_item_profile_1.json"))
    n = len(users)
    assert len(items) == n, "diverse item profile sets differ in length"
    os.makedirs(os.path.join(out, "diverse_profile"), exist_ok=True)
    with open(os.path.join(out, "user_profile.json"), "w", encoding="utf-8") as f:
        for r in users:
            f.write(json.dumps({"user_id": r["item_id"], "profile": r["profile"]}) + "\n")
    ids = np.array([r["item_id"] for r in users], dtype=np.int32)
    if evaluation:
        os.rmdir(os.path.join(out, "diverse_profile"))
        with open(os.path.join(out, "item_profile.json"), "w", encoding="utf-8") as f:
            for r in items:
                f.write(json.dumps({"item_id": r["item_id"], "profile": r["profile"]}) + "\n")
        for s, shift in (("trn", 1), ("val", 2), ("tst", 0)):
            m = sp.coo_matrix((np.ones(n), (ids, (ids + shift) % n)), shape=(n, n))
            with open(os.path.join(out, s + "_mat.pkl"), "wb") as f:
                pickle.dump(m, f, protocol=4)
        return
    with open(os.path.join(out, "diverse_profile", "diverse_item_profile_0.json"), "w", encoding="utf-8") as f:
        for r in items:
            f.write(json.dumps({"item_id": r["item_id"], "profile": r["profile"]}) + "\n")
    orig = os.path.join(src, "item_profile.json")
    if os.path.exists(orig):
        with open(os.path.join(out, "item_profile.json"), "w", encoding="utf-8") as f:
            for r in read(orig):
                f.write(json.dumps({"item_id": r["item_id"], "profile": r["profile"]}) + "\n")
    m = sp.coo_matrix((np.ones(n), (ids, ids)), shape=(n, n))
    for s in ("trn", "val", "tst"):
        with open(os.path.join(out, s + "_mat.pkl"), "wb") as f:
            pickle.dump(m, f, protocol=4)


if __name__ == "__main__":
    main()
