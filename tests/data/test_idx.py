import numpy as np
import pytest

from imagepipe.data.sources.idx import IdxFormatError, encode_idx, parse_idx


def test_round_trip():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(encode_idx(images), "x"), images)


def test_truncated_and_foreign_files_are_refused():
    payload = encode_idx(np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(IdxFormatError, match=r"images: IDX file truncated: header says shape \(5, 28, 28\)"):
        parse_idx(payload[:-10], "images")
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        parse_idx(b"\x89PNG\r\n", "images")
