"""The families there are, by name: `family(name)` imports `imagepipe.families.<name>.family`
only when asked, so a stage loads the code of its own family alone."""

import importlib

from imagepipe.families.base import Family

NAMES = ("rnn", "autoencoder", "vae", "unet", "detector")


def family(name: str) -> Family:
    """The family called name; a ValueError names the families there are."""
    if name not in NAMES:
        raise ValueError(f"unknown model family {name!r}; the families are {', '.join(NAMES)}")
    return importlib.import_module(f"imagepipe.families.{name}.family").FAMILY
