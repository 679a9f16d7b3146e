"""contrastrec: contrastive two-tower recommenders with Keras 3.

The names a user needs are importable from the package itself, e.g.
`from contrastrec import load_movielens_100k, split_interactions, encode, TrainConfig, Recommender`.
They are resolved on first use, so `import contrastrec` (and the command line's `--help`) stays fast and does not
load TensorFlow. The chapters' modules (`contrastrec.data`, `.towers`, `.losses`, `.evaluation`, `.training`,
`.distributed`, `.recommend`) hold everything else.
"""
import importlib

__version__ = "0.2.0"

_API = {
    "data": ("RecData", "load_movielens_100k", "load_benchmark_split", "load_split", "read_table", "from_frames",
             "split_interactions", "split_random", "encode", "MOVIELENS_USER_FEATURES", "MOVIELENS_ITEM_FEATURES"),
    "evaluation": ("evaluate", "Evaluator", "MostPopular", "ItemKNN", "EASE", "BPRMF"),
    "training": ("TrainConfig", "fit", "ContrastiveModel", "FullSoftmax", "InBatchSoftmax"),
    "recommend": ("Recommender",),
}
_MODULE_OF = {name: module for module, names in _API.items() for name in names}
# the names of `_API`, spelled out for tools that read `__all__` without running the package
__all__ = ["BPRMF", "ContrastiveModel", "EASE", "Evaluator", "FullSoftmax", "InBatchSoftmax", "ItemKNN",
           "MOVIELENS_ITEM_FEATURES", "MOVIELENS_USER_FEATURES", "MostPopular", "RecData", "Recommender",
           "TrainConfig", "encode", "evaluate", "fit", "from_frames", "load_benchmark_split", "load_movielens_100k",
           "load_split", "read_table", "split_interactions", "split_random"]


def __getattr__(name: str):
    "Import the chapter module that defines `name` on first use (PEP 562)."
    if name not in _MODULE_OF: raise AttributeError(f"module 'contrastrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"contrastrec.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]: return sorted([*globals(), *__all__])
