"Environment shared by tests/ and the nbval notebook kernels: quiet TensorFlow, the shared data copy."
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SHARED = (ROOT.parent / "shared").resolve()

os.environ.setdefault("IPYTHONDIR", str(ROOT / ".ipython"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("CONTRASTREC_DATA", str(SHARED / "data"))


@pytest.fixture(scope="session")
def ml150_split_folder(tmp_path_factory):
    "The first 150 MovieLens-100K users, split at random (seed 0), as a train/valid/test.tsv folder: (root, split)."
    from contrastrec.data import load_movielens_100k, split_random
    root = tmp_path_factory.mktemp("ml150")
    ml = load_movielens_100k()
    split = split_random(ml.interactions[ml.interactions.user_id <= 150], seed=0)
    (root / "split").mkdir()
    for part, frame in split.parts().items(): frame.to_csv(root / "split" / f"{part}.tsv", sep="\t", index=False)
    return root, split
