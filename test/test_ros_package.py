"""The ROS 2 package as a robot gets it: ``colcon build``, the installed tree, the launch file.

``colcon build`` runs for real (colcon from PyPI, ``tools/setup_ros.py``). ``launch`` and
``launch_ros`` have no wheels, so the launch file is loaded from the installed tree with small
stand-ins for the handful of launch classes it uses, which record what it declares; the
stand-ins resolve the arguments the way ``ros2 launch`` does (``LaunchConfiguration`` values,
``PythonExpression``, conditions, YAML parameter values) into the ``--ros-args`` command line
of the chosen node, and that command line then starts the *installed* ``seem_node``. What stays
untested here: launch's own process handling (``output``, signals, lifecycle events).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from seem_ros.model_zoo import DEMO_MODEL_NAME
from seem_ros.ros.params import load_params, param_names

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seem_ros"
START_TIMEOUT_S = 120.0


# ---------------------------------------------------------------- colcon
@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``colcon build`` of this repository; the package's install prefix."""
    workspace = tmp_path_factory.mktemp("colcon")
    colcon = Path(sys.executable).parent / "colcon"
    result = subprocess.run(
        [
            str(colcon),
            "--log-base",
            str(workspace / "log"),
            "build",
            "--base-paths",
            str(REPO_ROOT),
            "--build-base",
            str(workspace / "build"),
            "--install-base",
            str(workspace / "install"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workspace,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    started = [line for line in result.stdout.splitlines() if line.startswith("Starting >>>")]
    assert started == [f"Starting >>> {PACKAGE}"], result.stdout[-2000:]
    return workspace / "install" / PACKAGE


def test_colcon_installs_node_launch_config_rviz_and_model(install: Path) -> None:
    share = install / "share" / PACKAGE
    expected = [
        install / "lib" / PACKAGE / "seem_node",
        install / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE,
        share / "package.xml",
        share / "launch" / "seem.launch.py",
        share / "config" / "seem.yaml",
        share / "rviz" / "seem.rviz",
        share / "models" / DEMO_MODEL_NAME,
        share / "models" / DEMO_MODEL_NAME.replace(".safetensors", ".json"),
    ]
    assert [path for path in expected if not path.is_file()] == []
    assert os.access(install / "lib" / PACKAGE / "seem_node", os.X_OK)


def test_installed_config_holds_every_parameter_for_every_node(install: Path) -> None:
    config = install / "share" / PACKAGE / "config" / "seem.yaml"
    document = yaml.safe_load(config.read_text())
    assert list(document) == ["/**"]
    assert set(document["/**"]["ros__parameters"]) == set(param_names())
    assert load_params(config, node_name="any_name").backend == "auto"


def test_rviz_config_shows_the_overlay_and_publishes_points(install: Path) -> None:
    rviz = yaml.safe_load((install / "share" / PACKAGE / "rviz" / "seem.rviz").read_text())
    manager = rviz["Visualization Manager"]
    images = [d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
    assert any(d["Topic"]["Value"] == "/seem/overlay" and d["Enabled"] for d in images)
    tools = {t["Class"]: t for t in manager["Tools"]}
    assert tools["rviz_default_plugins/PublishPoint"]["Topic"]["Value"] == "/clicked_point"


def test_package_xml_declares_every_ros_package_the_node_imports() -> None:
    text = (REPO_ROOT / "package.xml").read_text()
    for dependency in (
        "rclpy",
        "rcl_interfaces",
        "lifecycle_msgs",
        "sensor_msgs",
        "std_msgs",
        "std_srvs",
        "geometry_msgs",
        "diagnostic_msgs",
        "vision_msgs",
        "tf2_msgs",
        "tf2_ros_py",
        "ament_index_python",
        "launch",
        "launch_ros",
    ):
        assert f"<exec_depend>{dependency}</exec_depend>" in text, dependency


# ---------------------------------------------------------------- tools/setup_ros.py
SETUP_ROS = REPO_ROOT / "tools" / "setup_ros.py"


def test_setup_step_without_cmake_and_compilers_says_what_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no cmake, cc or c++ on it
    result = subprocess.run(
        [sys.executable, str(SETUP_ROS)], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cmake" in result.stdout and "apt-get install cmake g++" in result.stdout


def test_setup_step_run_again_rebuilds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(SETUP_ROS)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for package in ("vision_msgs", "tf2_msgs"):
        assert f"{package} is already installed" in result.stdout, result.stdout


# ---------------------------------------------------------------- launch, with stand-ins
@dataclass
class Recorded:
    """One launch object the launch file built: its class name, arguments and keywords."""

    kind: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def recorder(kind: str) -> type:
    def init(self: Recorded, *args: Any, **kwargs: Any) -> None:
        Recorded.__init__(self, kind, args, kwargs)

    return type(kind, (Recorded,), {"__init__": init})


LAUNCH_MODULES = {
    "launch": ["LaunchDescription"],
    "launch.actions": ["DeclareLaunchArgument"],
    "launch.conditions": ["IfCondition", "UnlessCondition"],
    "launch.substitutions": ["LaunchConfiguration", "PythonExpression"],
    "launch_ros": [],
    "launch_ros.actions": ["LifecycleNode", "Node"],
}


def load_launch_description(
    path: Path, monkeypatch: pytest.MonkeyPatch, ament_prefixes: list[Path]
) -> Recorded:
    for module_name, classes in LAUNCH_MODULES.items():
        module = types.ModuleType(module_name)
        for name in classes:
            setattr(module, name, recorder(name))
        monkeypatch.setitem(sys.modules, module_name, module)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join(map(str, ament_prefixes)))
    spec = importlib.util.spec_from_file_location("seem_launch", path)
    assert spec is not None and spec.loader is not None
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    return launch_file.generate_launch_description()


def evaluate(value: Any, arguments: dict[str, str]) -> Any:
    """A substitution's text, as launch computes it."""
    if isinstance(value, Recorded) and value.kind == "LaunchConfiguration":
        return arguments[value.args[0]]
    if isinstance(value, Recorded) and value.kind == "PythonExpression":
        return str(eval(evaluate(value.args[0], arguments)))
    if isinstance(value, list):
        return "".join(evaluate(part, arguments) for part in value)
    return value


def condition_holds(condition: Recorded | None, arguments: dict[str, str]) -> bool:
    if condition is None:
        return True
    truth = evaluate(condition.args[0], arguments).strip().lower() in ("true", "1")
    return truth if condition.kind == "IfCondition" else not truth


def resolve(description: Recorded, given: dict[str, str]) -> tuple[list[Recorded], list[str]]:
    """Launch arguments as ``ros2 launch ... name:=value`` gives them: the nodes that start and
    the ``--ros-args`` of the SEEM node among them."""
    entities = description.args[0]
    declared = [e for e in entities if e.kind == "DeclareLaunchArgument"]
    arguments = {e.args[0]: e.kwargs["default_value"] for e in declared}
    unknown = set(given) - set(arguments)
    assert not unknown, f"undeclared launch arguments {unknown}"
    arguments.update(given)
    nodes = [
        e
        for e in entities
        if e.kind in ("LifecycleNode", "Node")
        and condition_holds(e.kwargs.get("condition"), arguments)
    ]
    seem = [n for n in nodes if n.kwargs["package"] == PACKAGE]
    assert len(seem) == 1, "exactly one SEEM node must start"
    node = seem[0].kwargs
    ros_args = [evaluate(a, arguments) for a in node["arguments"]]
    assert ros_args[0] == "--ros-args"
    namespace = evaluate(node["namespace"], arguments)
    ros_args += ["-r", f"__node:={node['name']}"]
    if namespace:
        ros_args += ["-r", f"__ns:={namespace}"]
    for parameters in node["parameters"]:
        if isinstance(parameters, dict):
            for name, value in parameters.items():
                ros_args += ["-p", f"{name}:={evaluate(value, arguments)}"]
        else:
            ros_args += ["--params-file", evaluate(parameters, arguments)]
    for source, target in node["remappings"]:
        ros_args += ["-r", f"{source}:={evaluate(target, arguments)}"]
    return nodes, ros_args


@pytest.fixture()
def launch_description(install: Path, monkeypatch: pytest.MonkeyPatch) -> Recorded:
    # The colcon prefix last, after the environment's: every AMENT_PREFIX_PATH entry counts.
    return load_launch_description(
        install / "share" / PACKAGE / "launch" / "seem.launch.py",
        monkeypatch,
        [Path(sys.prefix), install],
    )


def test_launch_defaults_start_one_node_with_the_installed_parameter_file(
    launch_description: Recorded, install: Path
) -> None:
    nodes, ros_args = resolve(launch_description, {})
    assert [n.kwargs["executable"] for n in nodes] == ["seem_node"]
    params_file = Path(ros_args[ros_args.index("--params-file") + 1])
    assert params_file == install / "share" / PACKAGE / "config" / "seem.yaml"
    assert "autostart:=true" in ros_args
    assert not any(arg.startswith("model_path:=") for arg in ros_args)


def test_launch_arguments_become_remaps_parameters_and_namespace(
    launch_description: Recorded,
) -> None:
    given = {
        "image": "/camera/image_raw",
        "model_path": "/models/mine.safetensors",
        "namespace": "/robot",
        "autostart": "false",
        "rviz": "true",
    }
    nodes, ros_args = resolve(launch_description, given)
    assert sorted(n.kwargs["executable"] for n in nodes) == ["rviz2", "seem_node"]
    rviz = next(n for n in nodes if n.kwargs["executable"] == "rviz2")
    assert Path(rviz.kwargs["arguments"][1]).is_file()
    pairs = list(itertools.pairwise(ros_args))
    assert ("-r", "image:=/camera/image_raw") in pairs
    assert ("-r", "__ns:=/robot") in pairs
    assert ("-p", "model_path:=/models/mine.safetensors") in pairs
    assert ("-p", "autostart:=false") in pairs


def test_launched_command_runs_the_installed_node_with_the_installed_demo_model(
    launch_description: Recorded, install: Path, tmp_path: Path
) -> None:
    """The installed ``seem_node`` with what the launch file resolves to: it reads the
    parameter file, finds the demo model under the second AMENT_PREFIX_PATH entry (the
    installed code does: the source tree's model would be found first) and puts
    ``camera_info`` beside the remapped image."""
    _, ros_args = resolve(launch_description, {"image": "/camera/image_raw"})
    site_packages = next((install / "lib").glob("python3*/site-packages"))
    env = {
        **os.environ,
        "AMENT_PREFIX_PATH": os.pathsep.join([sys.prefix, str(install)]),
        "PYTHONPATH": str(site_packages),
        "ROS_DOMAIN_ID": str(200 + os.getpid() % 30),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("SEEM_ROS_MODEL", None)
    command = [
        sys.executable,
        str(install / "lib" / PACKAGE / "seem_node"),
        *ros_args,
        "-p",
        "backend:=torch",
        "-p",
        "device:=cpu",
    ]
    log_path = tmp_path / "node.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "active:" not in log_path.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        text = log_path.read_text()
        model = install / "share" / PACKAGE / "models" / DEMO_MODEL_NAME
        assert f"model {model}" in text, text
        assert "image <- /camera/image_raw, camera_info <- /camera/camera_info" in text, text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log_path.read_text()
