"""Loading saved Keras models: `.keras` files only, always with safe_mode=True.

A `.keras` file describes its layers as configuration, which safe_mode loads without running
code from the file; a layer carrying Python code (a `Lambda` layer's bytecode) is refused.
Legacy `.h5` and SavedModel formats are not loaded at all.
"""

from pathlib import Path

import keras

from imagepipe.core.errors import StageError

# The words Keras's safe_mode errors share (keras/src/saving/serialization_lib.py,
# keras/src/layers/core/lambda_layer.py); Keras raises a plain ValueError for them.
UNSAFE_MARKER = "arbitrary code execution"


class ModelFileError(StageError):
    """A saved model that is not loaded: not a `.keras` file, unreadable, or unsafe."""


def load_keras(path: str | Path) -> keras.Model:
    """The model saved at path, a `.keras` file, loaded with safe_mode=True."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"{path} is not a .keras file: only .keras files are loaded (with safe_mode=True)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as error:
        if UNSAFE_MARKER in str(error):
            raise ModelFileError(
                f"{path} is refused: it holds Python code (a Lambda layer) that loading would run; "
                "only models of built-in layers are loaded"
            ) from None
        raise ModelFileError(f"cannot load {path}: {error}") from None
