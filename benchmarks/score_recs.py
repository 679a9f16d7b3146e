"""Score a recommendations file against a split's test part, independently of contrastrec (pandas and NumPy only).

Implements the benchmark README's protocol from scratch: per user, the recommended list (ranked by `rank`)
with the user's train and valid items removed; Recall@K and NDCG@K (binary relevance, IDCG over
min(K, #held-out)) averaged over users with at least one test item; users without recommendations score 0.

    python benchmarks/score_recs.py recs.tsv ../shared/benchmarks/ml100k-v1 [--k 10 20 50] [--out result.json]
"""
import argparse
import json
import math

import numpy as np
import pandas as pd


def score(recs: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, ks) -> dict:
    seen = set(zip(pd.concat([train, valid]).user_id, pd.concat([train, valid]).item_id))
    lists = {u: [i for i in g.sort_values("rank").item_id if (u, i) not in seen] for u, g in recs.groupby("user_id")}
    truth = test.groupby("user_id").item_id.apply(set)
    seen_recommended = sum((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    out = {"users": int(len(truth)), "seen_items_recommended": int(seen_recommended)}
    for k in ks:
        recall, ndcg = [], []
        for user, relevant in truth.items():
            top = lists.get(user, [])[:k]
            hits = [item in relevant for item in top]
            recall.append(sum(hits) / len(relevant))
            ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
            ndcg.append(sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h) / ideal)
        out[f"recall@{k}"], out[f"ndcg@{k}"] = float(np.mean(recall)), float(np.mean(ndcg))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recs")
    p.add_argument("split")
    p.add_argument("--k", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--out")
    a = p.parse_args()
    train, valid, test = (pd.read_csv(f"{a.split}/{name}.tsv", sep="\t") for name in ("train", "valid", "test"))
    result = score(pd.read_csv(a.recs, sep="\t"), train, valid, test, a.k)
    print(json.dumps(result, indent=1))
    if a.out: open(a.out, "w").write(json.dumps(result, indent=1))
