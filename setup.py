"""ament_python packaging: `colcon build` installs the node into lib/seg_perception and data into share."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "seg_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/models", [p for p in glob("models/*") if Path(p).is_file()]),  # not models/zoo/
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="seg_perception maintainers",
    maintainer_email="seg-perception@example.com",
    description="Road/obstacle semantic segmentation node for ROS 2 (TensorRT or ONNX Runtime).",
    license="Apache-2.0",
    python_requires=">=3.10",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            f"seg_perception_node = {PACKAGE}.node:main",
            f"seg-perception = {PACKAGE}.cli:main",
        ],
    },
)
