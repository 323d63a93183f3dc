"""seem_ros: an ament_python ROS 2 package that also installs with plain pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seem_ros"
ONNX = ["onnx>=1.15", "psutil>=5.9"]
BAGS = ["rosbags>=0.10"]
# PyTorch: the model itself (the torch backend, demo, convert, export, train, eval, bench).
# Every extra that works on a PyTorch model includes it; the runtime core runs exports without.
TORCH = ["torch>=2.1", "torchvision>=0.16", "open_clip_torch>=2.24", "timm>=0.9"]
# `seem-ros label` (the teacher pass) runs on Ray Data: a local instance or a cluster
FLEET = ["ray[data]>=2.40"]

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
    # The runtime core, without PyTorch: every prompt, results, tracking, the node, `seem-ros
    # segment` on an export folder (with an engine extra: ort, ort-gpu or tensorrt; ftfy and
    # regex for CLIP's tokenizer). PyTorch and everything else is an extra.
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "safetensors>=0.4",
        "pyyaml>=6",
        "tqdm>=4.60",
        "scipy>=1.10",
        "ftfy>=6",
        "regex>=2022",
    ],
    extras_require={
        # PyTorch inference on .safetensors weights, `demo`, `convert`
        "torch": TORCH,
        # run export folders without PyTorch: ONNX Runtime on the CPU, or with its CUDA /
        # TensorRT execution providers (onnxruntime-gpu, with onnx for its one-time FP16
        # conversion; not with the onnx, eval or dev extras)
        "ort": ["onnxruntime>=1.17", "psutil>=5.9"],
        "ort-gpu": [*ONNX, "onnxruntime-gpu>=1.17"],
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
        # ONNX export (PyTorch) and ONNX Runtime on the CPU
        "onnx": [*TORCH, *ONNX, "onnxruntime>=1.17"],
        # ONNX Runtime's CUDA / TensorRT execution providers, instead of the CPU build: the two
        # ship the same `onnxruntime` package and must not share a venv (do not combine with
        # the onnx, eval or dev extras; benchmarks/gpu_check.sh swaps them)
        "gpu": [*TORCH, *ONNX, "onnxruntime-gpu>=1.17"],
        # TensorRT from PyPI (11.x; the engine code also runs 10.x, e.g. JetPack 6's 10.3 from apt);
        # no PyTorch: engines build from an export folder (text prompts also need ort / ort-gpu)
        "tensorrt": [*ONNX, "tensorrt>=10.3,<12"],
        # scikit-image: its sample photos are the recipe's photo textures (seem_ros.data.photos)
        "train": [*TORCH, "matplotlib>=3.7", "scikit-image>=0.21"],
        # distillation at fleet scale: `seem-ros label` runs a PyTorch teacher on Ray
        "fleet": [*TORCH, *FLEET, *BAGS],
        # `seem-ros bench` (every backend, and the SAM / MobileSAM-class peers) and `eval`
        # (scikit-image: the photos of `eval --robustness`)
        "eval": [*TORCH, *ONNX, "onnxruntime>=1.17", "segment-anything>=1.0", "scikit-image>=0.21"],
        # tensorrt_cu13_bindings: TensorRT 11's Python bindings without its libraries (1 MB), so
        # test/test_tensorrt_api.py checks the names the TensorRT code uses against them
        "dev": [
            *TORCH,
            "pytest>=7",
            "pytest-timeout>=2.1",
            "ruff>=0.4",
            *ONNX,
            "onnxruntime>=1.17",
            "segment-anything>=1.0",
            "matplotlib>=3.7",
            "scikit-image>=0.21",
            *BAGS,
            *FLEET,
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
