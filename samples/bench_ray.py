"""Images/s of ``predict --ray`` (N actors, one thread each) against local ``predict`` (one process, N threads)
on the same photos, and their ratio (the issue's target: >= 0.8).

    python samples/bench_ray.py MODEL [--images 32] [--actors 2]

MODEL: an exported graph (e.g. model.onnx of `algm-export CHECKPOINT`). The photos are the bundled sample
photos repeated. Each command runs in its own process, as a user runs it; Ray starts a local instance with
N CPUs. Prints both rates as the commands report them (from the first image to the last: model loading is
outside for local predict, the actors' start is inside for Ray), the wall time of each whole command, and
the ratio of the rates.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from algm_export.photos import SAMPLE_PHOTOS, sample_photo  # noqa: E402

RATE = re.compile(r"\(([\d.]+) images/s\)")


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(images/s the command printed, wall seconds of the whole command)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    found = RATE.search(done.stdout)
    if done.returncode != 0 or not found:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return float(found.group(1)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as folder:
        photos = Path(folder) / "photos"
        photos.mkdir()
        for index in range(args.images):
            name = SAMPLE_PHOTOS[index % len(SAMPLE_PHOTOS)]
            Image.fromarray(sample_photo(name)).save(photos / f"{index:04d}_{name}.png")
        predict = [sys.executable, "-m", "algm_export", "predict", str(args.model), str(photos)]
        local, local_wall = run([*predict, "-o", f"{folder}/local"],
                                {**env, "OMP_NUM_THREADS": str(args.actors)})  # torch's threads in the averaging
        distributed, ray_wall = run([*predict, "-o", f"{folder}/ray", "--ray", "--ray-actors", str(args.actors),
                                     "--ray-cpus", "1", "--ray-threads", "1"], env)
    print(f"{args.images} photos, {args.model.name}; local predict ({args.actors} threads): {local:.2f} images/s "
          f"(command {local_wall:.1f} s); predict --ray ({args.actors} actors x 1 thread): {distributed:.2f} images/s "
          f"(command {ray_wall:.1f} s, Ray start included); ratio {distributed / local:.2f}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
