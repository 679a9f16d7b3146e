"""What the benchmark scripts record about the machine a run measured (times depend on it) and the code it ran."""
import subprocess

CODE_PATHS = ("contrastrec", "benchmarks/score_recs.py")  # the code a command-line run measures


def cpu_model() -> str:
    "The processor's model name as Linux reports it ('' where /proc/cpuinfo has none)."
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return ""


def _git(*args) -> str | None:
    run = subprocess.run(["git", *args], capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else None


def code_version(paths=CODE_PATHS) -> str:
    "The commit the checkout is at, marked when `paths` differ from it ('not a git checkout' outside one)."
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None: return "not a git checkout"
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", *paths)
    return commit + (" with local changes to the code run" if changed else "")
