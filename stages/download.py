"""download: get the configured dataset, verified, into `data/raw/` as uint8 shards.

Every dataset comes out the same way: train and test splits of images at the configured
height, width and channels (imagepipe.data.shards), integer labels, and the class names.
Caps on the number of images keep every class represented (a stratified subset drawn with the
seed, before any image is decoded). Image folders are decoded on every core, a shard at a time,
through a decode cache beside the download cache, so memory does not grow with the folder.
"""

import argparse
import logging
from pathlib import Path

import pooch

from imagepipe.core.cli import run_stage
from imagepipe.core.params import load_params
from imagepipe.data.sources.raw import build_raw
from imagepipe.data.storage import save_raw

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="output directory, e.g. data/raw")
    parser.add_argument("--cache-dir", type=Path, default=Path(pooch.os_cache("imagepipe")), help="download cache")
    args = parser.parse_args()
    params = load_params(args.params)
    train, test, names, manifest = build_raw(params.data, params.seed, args.cache_dir)
    size = (params.image.height, params.image.width, params.image.channels)
    save_raw(args.out, {"train": train, "test": test}, size, names, manifest)


if __name__ == "__main__":
    run_stage(main)
