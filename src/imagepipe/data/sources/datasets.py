"""The datasets `data.dataset` can name, and where each one comes from.

Fashion-MNIST and MNIST are published as four gzipped IDX files each. Their sources are tried
in order: the official URLs, then local mirrors. Fashion-MNIST's payload hashes were taken
from Debian's `dataset-fashion-mnist`, whose gzip files differ from upstream only in the
header's stored file name; the decompressed bytes are the published ones.
"""

from dataclasses import dataclass

from imagepipe.data.sources.fetch import Resource

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class IdxSpec:
    class_names: tuple[str, ...]
    sources: tuple[str, ...]
    train_images: Resource
    train_labels: Resource
    test_images: Resource
    test_labels: Resource

    @property
    def resources(self) -> list[Resource]:
        return [
            self.train_images,
            self.train_labels,
            self.test_images,
            self.test_labels,
        ]


FASHION_MNIST = IdxSpec(
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    sources=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        DEBIAN_FASHION_MNIST,
    ),
    train_images=Resource(
        "train-images-idx3-ubyte.gz",
        sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        payload_sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    train_labels=Resource(
        "train-labels-idx1-ubyte.gz",
        sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        payload_sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    test_images=Resource(
        "t10k-images-idx3-ubyte.gz",
        sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        payload_sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    test_labels=Resource(
        "t10k-labels-idx1-ubyte.gz",
        sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        payload_sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
)

MNIST = IdxSpec(
    class_names=tuple(str(digit) for digit in range(10)),
    sources=(
        "http://yann.lecun.com/exdb/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    train_images=Resource(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    train_labels=Resource(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    test_images=Resource(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    test_labels=Resource(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
)

IDX_DATASETS = {"fashion_mnist": FASHION_MNIST, "mnist": MNIST}
