"""scan: a snapshot of the configured data source in `data/source.json`, so DVC sees a local
image folder change.

DVC cannot watch a folder outside the repository, so this stage runs on every `dvc repro`
(`always_changed`), lists the source without reading its files, and download depends on the
snapshot: adding, removing or editing an image reruns download, which decodes only the new or
changed files (imagepipe.data.sources.decode); an unchanged folder reruns nothing.
"""

import argparse
import logging
from pathlib import Path

from imagepipe.core.cli import run_stage
from imagepipe.core.files import replace_whole, write_json
from imagepipe.core.params import load_params
from imagepipe.data.sources.snapshot import snapshot

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="the snapshot, e.g. data/source.json")
    args = parser.parse_args()
    state = snapshot(load_params(args.params).data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    replace_whole(args.out, lambda scratch: write_json(scratch, state))
    logger.info("%s: %s", args.out, state)


if __name__ == "__main__":
    run_stage(main)
