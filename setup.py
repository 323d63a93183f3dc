"""seem_ros: an ament_python ROS 2 package that also installs with plain pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seem_ros"
ONNX = ["onnx>=1.15", "psutil>=5.9"]
BAGS = ["rosbags>=0.10"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="SEEM segmentation (every prompt, every task) for ROS 2 robots",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={
        "seem_ros.model": ["configs/*.yaml"],
        "seem_ros.model.official": ["manifests/*.json"],
        "seem_ros.data": ["samples/*"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
        (f"share/{PACKAGE}/models", glob("models/*.safetensors") + glob("models/*.json")),
    ],
    python_requires=">=3.10",
    # The runtime core: inference (PyTorch), every prompt, results, tracking, `seem-ros
    # segment` / `demo` / `convert`. Everything else is an extra.
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "torch>=2.1",
        "torchvision>=0.16",
        "open_clip_torch>=2.24",
        "timm>=0.9",
        "safetensors>=0.4",
        "pyyaml>=6",
        "tqdm>=4.60",
        "scipy>=1.10",
    ],
    extras_require={
        # ROS 2 Jazzy from PyPI (Python 3.11); tools/setup_ros.py installs these and builds
        # vision_msgs and tf2_msgs, which have no wheel. On a robot, apt's ROS 2 replaces them.
        # rosbags: message (de)serialisation and rosbag2 files (`seem-ros bag`).
        "ros": [
            "ros-jazzy-rclpy",
            "ros-jazzy-rmw-fastrtps-cpp",
            "ros-jazzy-rcl-interfaces",
            "ros-jazzy-lifecycle-msgs",
            "ros-jazzy-ament-index-python",
            "ros-jazzy-std-msgs",
            "ros-jazzy-std-srvs",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-diagnostic-msgs",
            *BAGS,
        ],
        "bags": BAGS,  # rosbag2 files without ROS 2: `seem-ros bag`
        # ONNX export and ONNX Runtime on the CPU
        "onnx": [*ONNX, "onnxruntime>=1.17"],
        # ONNX Runtime's CUDA / TensorRT execution providers, instead of the CPU build: the two
        # ship the same `onnxruntime` package and must not share a venv (do not combine with
        # the onnx, eval or dev extras; benchmarks/gpu_check.sh swaps them)
        "gpu": [*ONNX, "onnxruntime-gpu>=1.17"],
        # TensorRT from PyPI (11.x; the engine code also runs 10.x, e.g. JetPack 6's 10.3 from apt)
        "tensorrt": [*ONNX, "tensorrt>=10.3,<12"],
        # scikit-image: its sample photos are the recipe's photo textures (seem_ros.data.photos)
        "train": ["matplotlib>=3.7", "scikit-image>=0.21"],
        # `seem-ros bench` (every backend, and the SAM / MobileSAM-class peers) and `eval`
        # (scikit-image: the photos of `eval --robustness`)
        "eval": [*ONNX, "onnxruntime>=1.17", "segment-anything>=1.0", "scikit-image>=0.21"],
        # tensorrt_cu13_bindings: TensorRT 11's Python bindings without its libraries (1 MB), so
        # test/test_tensorrt_api.py checks the names the TensorRT code uses against them
        "dev": [
            "pytest>=7",
            "pytest-timeout>=2.1",
            "ruff>=0.4",
            *ONNX,
            "onnxruntime>=1.17",
            "segment-anything>=1.0",
            "matplotlib>=3.7",
            "scikit-image>=0.21",
            *BAGS,
            "mcap>=1.1",
            "mcap-ros2-support>=0.5",
            "tensorrt-cu13-bindings>=11,<12; platform_machine == 'x86_64'",
        ],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "seem-ros = seem_ros.cli:main",
            "seem_node = seem_ros.ros.node:main",
        ],
    },
)
