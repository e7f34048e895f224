"""TensorRT: availability checks, plugin library, engine building. Import-guarded: nothing here imports
``tensorrt`` at module level, so the rest of the package works on machines without it."""
