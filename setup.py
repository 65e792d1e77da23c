"""ament_python packaging: `colcon build` installs the node into lib/seg_perception and data into share."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "seg_perception"


def _tree(root: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing every file under `root` into share/, keeping its folders."""
    folders = sorted({p.parent for p in Path(root).rglob("*") if p.is_file() and "__pycache__" not in p.parts})
    return [(f"share/{PACKAGE}/{d}", sorted(str(p) for p in d.iterdir() if p.is_file())) for d in folders]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        *_tree("models"),  # the demo model and models/zoo/<family>/, folder by folder
    ],
    # Runtime dependencies come from package.xml (rosdep) plus requirements-ros.txt on a ROS install, and from
    # requirements.txt in `make venv`; listing them here would make colcon's `setup.py install` try to fetch e.g.
    # opencv-python-headless where apt's python3-opencv provides cv2. Oldest supported versions, proven in CI:
    # constraints-oldest.txt (test/test_declared_minimums_agree.py keeps README and requirements-ros.txt in step).
    install_requires=["setuptools"],
    extras_require={"ray": ["ray[data]>=2.40"]},  # `--ray` on process/eval (seg_perception/fleet/)
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
