"""seem_ros: an ament_python ROS 2 package that also installs with plain pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seem_ros"

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
        "onnx>=1.15",
        "onnxruntime>=1.17",
        "rosbags>=0.10",
        "mcap>=1.1",
        "mcap-ros2-support>=0.5",
        "psutil>=5.9",
    ],
    extras_require={
        # ROS 2 Jazzy from PyPI (Python 3.11); tools/setup_ros.py installs these and builds
        # vision_msgs and tf2_msgs, which have no wheel. On a robot, apt's ROS 2 replaces them.
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
        ],
        # ONNX Runtime's CUDA / TensorRT execution providers. onnxruntime-gpu and onnxruntime
        # ship the same `onnxruntime` package and must not share a venv: after installing this
        # extra, `pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu`
        # (benchmarks/gpu_check.sh does so).
        "gpu": ["onnxruntime-gpu>=1.17"],
        # TensorRT from PyPI (11.x; the engine code also runs 10.x, e.g. JetPack 6's 10.3 from apt)
        "tensorrt": ["tensorrt>=10.3,<12"],
        # tensorrt_cu13_bindings: TensorRT 11's Python bindings without its libraries (1 MB), so
        # test/test_tensorrt_api.py checks the names the TensorRT code uses against them
        "dev": [
            "pytest>=7",
            "pytest-timeout>=2.1",
            "ruff>=0.4",
            "segment-anything>=1.0",
            "tensorrt-cu13-bindings>=11,<12; platform_machine == 'x86_64'",
        ],
        "train": ["matplotlib>=3.7"],
        "peers": ["segment-anything>=1.0"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "seem-ros = seem_ros.cli:main",
            "seem_node = seem_ros.ros.node:main",
        ],
    },
)
