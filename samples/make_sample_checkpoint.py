#!/usr/bin/env python3
"""Write a small random-weight ALGM/Segmenter checkpoint in the research format.

    python samples/make_sample_checkpoint.py samples/checkpoints/vit_tiny
    python samples/make_sample_checkpoint.py samples/checkpoints/vit_small --preset small

The folder receives checkpoint.pth (a dict with 'model') and variant.yml, exactly as the ALGM
research code writes them: ViT/16 encoder, 2-block mask-transformer decoder, ADE20K's 150 classes,
ALGM in blocks 1 and 5 (window 2x2, threshold 0.88). The encoder keeps its seeded random weights; the
decoder is fitted in 100 optimizer steps to label each patch with the target colour nearest to it on the
bundled photos (see samples/sample_models.py). The labels are not ADE20K semantics, but every stage of
the pipeline runs on it, merges really happen, and label maps have trained-model-like margins.
"""

import argparse
import sys

from sample_models import PRESETS, write_sample_checkpoint

from algm_export import ALGMConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="samples/checkpoints/vit_tiny", help="output folder")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="ViT size (default tiny)")
    parser.add_argument("--image-size", type=int, default=512, help="training image size (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--dense", action="store_true", help="a checkpoint trained without ALGM")
    args = parser.parse_args()
    print(f"making a ViT-{args.preset}/16 sample (random encoder, decoder fitted in 100 optimizer steps) ...",
          flush=True)
    path = write_sample_checkpoint(args.folder, args.preset, args.image_size,
                                   None if args.dense else ALGMConfig(), args.seed)
    print(f"wrote {path} and {path.parent / 'variant.yml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
