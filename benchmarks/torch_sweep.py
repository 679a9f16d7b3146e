"""Hyper-parameter search for the default model, as a PyTorch re-implementation (run on a lent GPU).

Not part of the library (PyTorch is no dependency); it re-implements the default model of chapter 5
(mean-pooled history with item dropout, id item tower, cosine / tau, full-catalogue multi-positive
softmax) to search its space fast. Selection is on valid NDCG@20; test is reported at the best valid epoch.
It reads SPLIT_DIR/{train,valid,test}.tsv (e.g. a copy of ../shared/benchmarks/ml100k-v1; never commit it).

    python benchmarks/torch_sweep.py SPLIT_DIR 300 12 out.json 0                     # round 1: random search
    CFGS=benchmarks/results/torch_sweep_round2_configs.json python benchmarks/torch_sweep.py SPLIT_DIR 0 14 out.json   # round 2
Round 1 ran on an H100, round 2 on an H200 (16 CPU processes sharing the GPU); results in benchmarks/results/torch_sweep_*.json.
"""
import json, os, random, sys, time
import numpy as np, pandas as pd, torch, torch.nn as nn, torch.nn.functional as F

DEV = "cuda" if torch.cuda.is_available() else "cpu"
HERE = os.path.dirname(os.path.abspath(__file__))

def load(split_dir):
    parts = {p: pd.read_csv(f"{split_dir}/{p}.tsv", sep="\t") for p in ("train", "valid", "test")}
    nu, ni = 944, 1683
    def mat(df):
        m = torch.zeros(nu, ni); m[df.user_id.values, df.item_id.values] = 1; return m.to(DEV)
    return {p: mat(df) for p, df in parts.items()}

def ndcg_recall(scores, exclude, held, k=20):
    scores = scores.masked_fill(exclude > 0, -1e9); scores[:, 0] = -1e9
    top = scores.topk(k).indices
    hits = held.gather(1, top)
    n = held.sum(1); ok = n > 0
    disc = 1 / torch.log2(torch.arange(2, k + 2, device=DEV).float())
    idcg = torch.cumsum(disc, 0)[(n.clamp(1, k) - 1).long()]
    return ((hits * disc).sum(1) / idcg)[ok].mean().item(), (hits.sum(1) / n.clamp(min=1))[ok].mean().item()

class Model(nn.Module):
    def __init__(s, ni, d, shared, hidden, act, cfg_bias=False):
        super().__init__()
        s.ein = nn.Embedding(ni, d); nn.init.normal_(s.ein.weight, std=0.1)
        s.eout = s.ein if shared else nn.Embedding(ni, d)
        if not shared: nn.init.normal_(s.eout.weight, std=0.1)
        layers = []
        for h in hidden: layers += [nn.Linear(d if not layers else hidden[0], h), nn.Tanh() if act == "tanh" else nn.GELU()]
        if hidden: layers += [nn.Linear(hidden[-1], d)]
        s.mlp = nn.Sequential(*layers)
        s.bias = nn.Parameter(torch.zeros(ni)) if cfg_bias else None
    def user(s, x):
        h = x @ s.ein.weight / x.sum(1, keepdim=True).clamp(min=1)
        if len(s.mlp): h = h + s.mlp(h)
        return F.normalize(h, dim=-1)
    def items(s): return F.normalize(s.eout.weight, dim=-1)
    def score(s, u, tau):
        out = u @ s.items().T / tau
        return out + s.bias if s.bias is not None else out

def run(cfg, data):
    torch.manual_seed(cfg["seed"]); np.random.seed(cfg["seed"])
    tr, va, te = data["train"], data["valid"], data["test"]
    ni = tr.shape[1]
    m = Model(ni, cfg["d"], cfg["shared"], cfg["hidden"], cfg.get("act", "tanh"), cfg.get("bias", False)).to(DEV)
    opt = torch.optim.Adam(m.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
    ema = [p.detach().clone() for p in m.parameters()] if cfg["ema"] else None
    users = torch.arange(1, tr.shape[0], device=DEV)
    best = (-1, 0, None); hist = []; bad = 0
    t0 = time.time()
    colmask = torch.zeros(ni, device=DEV); colmask[0] = -1e9
    for ep in range(cfg["epochs"]):
        m.train()
        perm = users[torch.randperm(len(users), device=DEV)]
        for b in perm.split(cfg["bs"]):
            x = tr[b]
            keep = (torch.rand_like(x) > cfg["drop"]).float()
            xin = x * keep
            tgt = x * (1 - keep) if cfg["target"] == "dropped" else x
            u = m.user(xin)
            logits = m.score(u, cfg["tau"]) + colmask
            logp = F.log_softmax(logits, -1)
            if cfg.get("lossw", "mean") == "mean":
                loss = (-(tgt * logp).sum(1) / tgt.sum(1).clamp(min=1)).mean()
            else:
                loss = -(tgt * logp).sum(1).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            if ema:
                with torch.no_grad():
                    for e, p in zip(ema, m.parameters()): e.mul_(cfg["ema"]).add_(p.detach(), alpha=1 - cfg["ema"])
        if (ep + 1) % cfg["eval_every"] == 0:
            m.eval()
            with torch.no_grad():
                if ema:
                    saved = [p.detach().clone() for p in m.parameters()]
                    for e, p in zip(ema, m.parameters()): p.copy_(e)
                v = ndcg_recall(m.score(m.user(tr), cfg["tau"]), tr, va)
                if v[0] > best[0]:
                    t = ndcg_recall(m.score(m.user(tr + va), cfg["tau"]), tr + va, te)
                    best = (v[0], ep + 1, t, v[1]); bad = 0
                else: bad += 1
                hist.append((ep + 1, round(v[0], 4)))
                if ema:
                    for s_, p in zip(saved, m.parameters()): p.copy_(s_)
            if bad >= cfg["patience"]: break
    return {**cfg, "valid_ndcg": round(best[0], 4), "valid_recall": round(best[3], 4), "best_epoch": best[1], "test_ndcg": round(best[2][0], 4),
            "test_recall": round(best[2][1], 4), "secs": round(time.time() - t0, 1), "hist": hist}

BASE = dict(d=256, shared=True, hidden=[], tau=0.2, drop=0.5, target="all", lr=1e-3, wd=0.0, bs=64, ema=0,
            epochs=300, eval_every=5, patience=8, seed=0)

def grid(n, rng):
    space = dict(d=[128, 256, 512, 1024], shared=[True, False], hidden=[[], [512], [1024]], tau=[0.1, 0.15, 0.2, 0.25, 0.3],
                 drop=[0.3, 0.5, 0.7], target=["all", "dropped"], lr=[1e-3, 3e-3], wd=[0, 1e-7, 1e-6],
                 bs=[32, 128], ema=[0, 0.99], lossw=["mean", "sum"])
    out = [dict(BASE)]
    for _ in range(n):
        c = dict(BASE); c.update({k: rng.choice(v) for k, v in space.items()}); out.append(c)
    return out

def worker(args):
    cfgs, split_dir, wid = args
    torch.set_num_threads(2)
    cache = {}
    res = []
    deadline = float(os.environ.get("DEADLINE", "1e12"))
    for c in cfgs:
        if time.time() > deadline: break
        sd = c.get("split", split_dir)
        if sd not in cache: cache[sd] = load(sd)
        try: r = run(c, cache[sd])
        except Exception as e: r = {**c, "error": repr(e)}
        print(json.dumps(r), flush=True); res.append(r)
    return res

if __name__ == "__main__":
    split_dir, n, nproc, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    cfgs = grid(n, rng) if n >= 0 else [dict(BASE, epochs=10)]
    if os.environ.get("CFGS"): cfgs = [dict(BASE, **c) for c in json.loads(open(os.environ["CFGS"]).read())]
    chunks = [(cfgs[i::nproc], split_dir, i) for i in range(nproc)]
    import multiprocessing as mp
    with mp.get_context("spawn").Pool(nproc) as pool:
        results = [r for rs in pool.map(worker, chunks) for r in rs]
    results.sort(key=lambda r: -r.get("valid_ndcg", -1))
    json.dump(results, open(out, "w"), indent=0)
    for r in results[:15]: print({k: r.get(k) for k in ("valid_ndcg", "test_ndcg", "test_recall", "best_epoch", "d", "shared", "hidden", "tau", "drop", "target", "lr", "wd", "bs", "ema", "lossw", "secs")})
