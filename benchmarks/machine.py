"""What the benchmark scripts record about the machine a run measured (times depend on it)."""


def cpu_model() -> str:
    "The processor's model name as Linux reports it ('' where /proc/cpuinfo has none)."
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return ""
