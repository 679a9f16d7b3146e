"Environment shared by tests/ and the nbval notebook kernels: quiet TensorFlow, the shared data copy."
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = (ROOT.parent / "shared").resolve()

os.environ.setdefault("IPYTHONDIR", str(ROOT / ".ipython"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("CONTRASTREC_DATA", str(SHARED / "data"))
