"""Most popular, ItemKNN and EASE on Yelp2018 and Gowalla (chapter 4's baselines at benchmark scale); run by hand.

Protocol (the benchmark README's): ItemKNN's k selected on valid NDCG@20 over a small grid, the selected model
reported on valid and test; full ranking over every item, known items excluded, Recall@20 and NDCG@20.
EASE is fitted for each λ given with --ease (one fit of a 38k-item catalogue is a 10–25 minute n³ inverse on one
BLAS thread, so its grid is whatever the caller can afford; a single λ is reported as not selected), in float64 or,
with --ease-dtype float32, in a third of the memory and about half the time; the two are stored as separate models,
"EASE" and "EASE float32".
For every fit: wall-clock seconds, the peak of numpy/scipy allocations during the fit (`tracemalloc`), and the
size of the fitted weights; after each fit and its scoring, the process's peak resident memory so far (`ru_maxrss`,
which includes TensorFlow's start-up and every earlier step of the run), kept with that fit. Writes
benchmarks/results/baselines_scale.json, keeping the entries of datasets not re-run; --note is stored with the run.

    source tools/env.sh && nice .venv/bin/python benchmarks/baselines_scale.py [yelp2018 gowalla] [--k 50 100 ...]
    source tools/env.sh && OPENBLAS_NUM_THREADS=1 nice .venv/bin/python benchmarks/baselines_scale.py yelp2018 \
        --models ease --ease 500
    source tools/env.sh && OPENBLAS_NUM_THREADS=1 nice .venv/bin/python benchmarks/baselines_scale.py yelp2018 \
        --models ease --ease 250 500 1000 --ease-dtype float32

(EASE on Yelp2018's 38k items with OpenBLAS's default threads died with a segmentation fault inside OpenBLAS's
Cholesky on 2026-12-02; one BLAS thread completed it.)
(the default grid is k ∈ {50, 100, 200, 400, 800}). A run replaces the entries of the models it fits and keeps
the others (with --extend, the fitted points join the stored grid and the choice is made again over all of them,
e.g. to try a λ past the end of a grid); each entry records the command and machine that produced it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
from machine import cpu_model

from contrastrec.data import encode, load_benchmark_split
from contrastrec.evaluation import EASE, Evaluator, ItemKNN, MostPopular

SELECT_ON = "ndcg@20"
METRICS = ("recall", "ndcg")


def peak_rss_gib() -> float:
    "The process's peak resident memory so far (Linux reports ru_maxrss in KiB)."
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def weights_mib(model) -> float:
    "Memory held by the fitted model's scoring array(s)."
    w = getattr(model, "weights", None)
    if w is None: w = model.counts
    arrays = (w.data, w.indices, w.indptr) if sp.issparse(w) else (w,)
    return round(sum(a.nbytes for a in arrays) / 2**20, 2)


def timed_fit(model, data) -> tuple[object, dict]:
    "Fit under tracemalloc; seconds and the peak traced allocation (MiB) of the fit."
    tracemalloc.start()
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return model, {"fit_seconds": round(seconds, 2), "fit_peak_traced_mib": round(peak / 2**20, 1),
                   "weights_mib": weights_mib(model)}


def timed_eval(evaluator: Evaluator, model, data, part: str) -> tuple[dict, float]:
    start = time.perf_counter()
    metrics = evaluator(model.score_fn(data, part))
    return metrics, round(time.perf_counter() - start, 2)


def dataset_summary(name: str) -> tuple[object, dict]:
    start = time.perf_counter()
    data = encode(load_benchmark_split(name))
    out = {"n_users": data.n_users - 1, "n_items": data.n_items - 1, "train_pairs": len(data.train),
           "valid_pairs": len(data.valid), "test_pairs": len(data.test),
           "load_seconds": round(time.perf_counter() - start, 2)}
    print(f"{name}: {out['n_users']:,} users, {out['n_items']:,} items, {out['train_pairs']:,} train pairs "
          f"(loaded in {out['load_seconds']} s)", flush=True)
    return data, out


def most_popular(data, evaluators: dict) -> dict:
    pop, cost = timed_fit(MostPopular(), data)
    valid, valid_s = timed_eval(evaluators["valid"], pop, data, "valid")
    test, test_s = timed_eval(evaluators["test"], pop, data, "test")
    print(f"  MostPopular: valid {SELECT_ON} {valid[SELECT_ON]:.4f}, test recall@20 {test['recall@20']:.4f} "
          f"ndcg@20 {test['ndcg@20']:.4f}", flush=True)
    return {"config": {}, **cost, "valid": valid, "test": test, "valid_eval_seconds": valid_s,
            "test_eval_seconds": test_s, "peak_rss_gib_so_far": peak_rss_gib()}


def chosen(grid: list[dict]) -> dict:
    "A model's entry: the grid point best on valid (the first of equals), reported with the whole grid."
    best = max(grid, key=lambda point: point["valid"][SELECT_ON])
    return {**{key: best[key] for key in ("config", "fit_seconds", "fit_peak_traced_mib", "weights_mib", "valid",
                                          "valid_eval_seconds", "test", "test_eval_seconds")},
            "grid": grid, "selected": len(grid) > 1}


def selected_on_valid(name: str, models, data, evaluators: dict) -> dict:
    """Fit each of `models` (an iterable of unfitted models), keep the best on valid, report it on test.
    One fitted model is held at a time: each is scored on valid and test before the next is fitted (EASE's dense
    weights are GiBs); the choice reads valid only."""
    grid = []
    for model in models:
        model, cost = timed_fit(model, data)
        valid, valid_s = timed_eval(evaluators["valid"], model, data, "valid")
        test, test_s = timed_eval(evaluators["test"], model, data, "test")
        point = {"config": model.config(), **cost, "valid": valid, "valid_eval_seconds": valid_s, "test": test,
                 "test_eval_seconds": test_s, "peak_rss_gib_so_far": peak_rss_gib()}
        del model
        grid.append(point)
        print(f"  {name} {point['config']}: fit {cost['fit_seconds']} s "
              f"(peak traced {cost['fit_peak_traced_mib']} MiB, "
              f"W {cost['weights_mib']} MiB), valid recall@20 {valid['recall@20']:.4f} ndcg@20 {valid['ndcg@20']:.4f} "
              f"({valid_s} s), peak RSS so far {point['peak_rss_gib_so_far']} GiB", flush=True)
    entry = chosen(grid)
    print(f"  {name} selected {entry['config']}: test recall@20 {entry['test']['recall@20']:.4f} "
          f"ndcg@20 {entry['test']['ndcg@20']:.4f} ({entry['test_eval_seconds']} s)", flush=True)
    return entry


def model_key(model: str, ease_dtype: str) -> str:
    "The results' name of a --models choice."
    return {"mostpopular": "MostPopular", "itemknn": "ItemKNN",
            "ease": "EASE" if ease_dtype == "float64" else f"EASE {ease_dtype}"}[model]


def benchmark(name: str, models: list[str], ks: list[int], lams: list[float], ease_dtype: str, run: dict) -> dict:
    data, out = dataset_summary(name)
    evaluators = {part: Evaluator(data, part, ks=(20,), metrics=METRICS) for part in ("valid", "test")}
    ease_key = model_key("ease", ease_dtype)
    fits = {"mostpopular": lambda: most_popular(data, evaluators),
            "itemknn": lambda: selected_on_valid("ItemKNN", (ItemKNN(k=k) for k in ks), data, evaluators),
            "ease": lambda: selected_on_valid(ease_key, (EASE(lam, ease_dtype) for lam in lams), data, evaluators)}
    for model in models:
        out[model_key(model, ease_dtype)] = {"run": run, **fits[model]()}
    return out


def config_key(point: dict) -> str: return json.dumps(point["config"], sort_keys=True)


def extended(old: dict, new: dict) -> dict:
    """The stored model entry `old` with `new`'s grid points added (a point of the same config replaced), chosen
    again on valid over all of them; each point keeps the run that fitted it."""
    points = {config_key(p): {"run": old["run"], **p} for p in old["grid"]}
    points.update({config_key(p): {"run": new["run"], **p} for p in new["grid"]})
    return {"run": new["run"], **chosen(list(points.values()))}  # older points first among equals


def stored_datasets(out: Path) -> dict:
    "The datasets' entries of the results file `out` (none if it does not exist yet)."
    return json.loads(out.read_text())["datasets"] if out.exists() else {}


def check_extendable(previous: dict, names: list[str], keys: list[str]) -> None:
    "Stop before any fit unless every grid to extend is stored with a test score at each point."
    for name in names:
        for key in keys:
            entry = previous.get(name, {}).get(key)
            if entry is None or not all("test" in p for p in entry["grid"]):
                raise SystemExit(f"--extend: {name} has no {key} grid scored on test at every point; "
                                 "fit the whole grid instead.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["yelp2018", "gowalla"])
    parser.add_argument("--models", nargs="+", choices=["mostpopular", "itemknn", "ease"],
                        default=["mostpopular", "itemknn"])
    parser.add_argument("--k", nargs="+", type=int, default=[50, 100, 200, 400, 800], help="ItemKNN's grid")
    parser.add_argument("--ease", nargs="+", type=float, default=[500.0], help="EASE's λ grid")
    parser.add_argument("--ease-dtype", choices=["float64", "float32"], default="float64",
                        help="precision of EASE's inverse (float32: a third of the memory)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "baselines_scale.json")
    parser.add_argument("--extend", action="store_true",
                        help="add the fitted points to the stored grids and choose again over all of them")
    parser.add_argument("--note", default="", help="stored with the run, e.g. that other jobs shared the cores")
    args = parser.parse_args()
    keys = [model_key(m, args.ease_dtype) for m in args.models]
    if args.extend: check_extendable(stored_datasets(args.out), args.names, keys)
    run = {"command": "nice .venv/bin/python benchmarks/baselines_scale.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(),
                       "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                       "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                       "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")},
           **({"note": args.note} if args.note else {})}
    # times are wall-clock: a busy machine (see its load average) inflates them
    fitted = {name: benchmark(name, args.models, args.k, args.ease, args.ease_dtype, run) for name in args.names}
    previous = stored_datasets(args.out)  # read last: runs may overlap
    if args.extend:
        fitted = {name: {k: extended(previous[name][k], v) if k in keys else v for k, v in entries.items()}
                  for name, entries in fitted.items()}
    datasets = {**previous, **{name: {**previous.get(name, {}), **entries} for name, entries in fitted.items()}}
    results = {"selected_on": f"valid {SELECT_ON}", "reported_on": "test", "datasets": datasets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("wrote", args.out, f"(peak resident memory {peak_rss_gib()} GiB)")


if __name__ == "__main__":
    main()
