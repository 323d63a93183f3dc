"""The runtime core runs without PyTorch: a fresh venv with ``pip install -e '.[ort,bags]'`` (no
torch, torchvision, open_clip, timm or onnx) runs an export of the demo model, made beforehand
with this (PyTorch) environment, through ``seem-ros segment`` (class names, a click, a referring
phrase), the node core (serialized frames and prompts in, detections out), and ``seem-ros bag``
(the node core over a rosbag2); it answers as the PyTorch path does, and the commands that need
PyTorch say which extra. Last, the ``torch`` extra is added to the same venv and the README's
main job (``seem-ros demo``) runs.

The rclpy node itself is not started here: its ROS 2 wheels and the interface packages built by
``tools/setup_ros.py`` would cost minutes per venv; it is the same :class:`NodeCore` behind a
byte pipe (``test_node.py`` runs that pipe in the full venv) and imports without torch
(``test_runtime.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_MODEL = REPO / "models" / "seem_tiny_demo.safetensors"
SAMPLE_BAG = REPO / "seem_ros" / "data" / "samples" / "sample_scene.mcap"
TORCH_PACKAGES = ("torch", "torchvision", "open_clip", "timm", "onnx")
EXTRA_PACKAGES = ("rclpy", "matplotlib", "segment_anything", "tensorrt")


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f"{REPO}[ort,bags]",
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    return venv


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    """The demo model exported here, where PyTorch is installed, for the 320x240 test scene's
    frame shape (as for a camera: the input keeps the frame's aspect)."""
    from seem_ros.engine.onnx_export import export_model
    from seem_ros.segmenter import Segmenter

    folder = tmp_path_factory.mktemp("demo_export")
    segmenter = Segmenter.from_pretrained(DEMO_MODEL)
    input_hw = segmenter.transform_for(240, 320).input_hw
    export_model(segmenter.model, segmenter.card, folder, group_counts=(1, 3), input_hw=input_hw)
    return folder


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    image = np.full((240, 320, 3), 90, dtype=np.uint8)
    cv2.circle(image, (80, 90), 40, (220, 30, 30), -1)
    cv2.rectangle(image, (170, 40), (260, 130), (30, 30, 220), -1)
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def seem_ros(venv: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "seem-ros"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def python(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_the_runtime_venv_has_no_torch_and_none_of_the_other_extras(runtime_venv):
    result = python(runtime_venv, "import torch")
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr
    names = [*TORCH_PACKAGES, *EXTRA_PACKAGES]
    code = f"import importlib.util as u; print([m for m in {names} if u.find_spec(m)])"
    assert python(runtime_venv, code).stdout.strip() == "[]"
    assert python(runtime_venv, "import onnxruntime, rosbags").returncode == 0


@pytest.mark.slow
def test_segment_runs_an_export_without_torch_as_pytorch_does(
    runtime_venv, export_dir, scene, tmp_path
):
    from seem_ros.prompts import ClassNames, Points, ReferringText
    from seem_ros.segmenter import Segmenter

    reference = Segmenter.from_pretrained(DEMO_MODEL)
    image = cv2.cvtColor(cv2.imread(str(scene)), cv2.COLOR_BGR2RGB)
    runs = {
        "classes and a click": (
            ["--classes", "circle; square", "--point", "215,85"],
            [ClassNames.parse("circle; square"), Points.single(215, 85)],
        ),
        "a referring phrase": (["--refer", "the red circle"], [ReferringText("the red circle")]),
    }
    for name, (args, prompts) in runs.items():
        out = tmp_path / f"{name}.json"
        result = seem_ros(
            runtime_venv, "segment", str(scene), "--model", str(export_dir), *args,
            "--out", str(tmp_path / f"{name}.png"), "--json", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "onnxruntime" in result.stderr  # the backend it took is logged
        got = json.loads(out.read_text())["instances"]
        expected = reference.segment(image, prompts).to_dict()["instances"]
        assert [i["label"] for i in got] == [i["label"] for i in expected], name
        for mine, theirs in zip(got, expected):
            assert mine["box"] == theirs["box"]
            assert mine["area"] == pytest.approx(theirs["area"], rel=0.01)
            assert mine["score"] == pytest.approx(theirs["score"], abs=2e-3)


@pytest.mark.slow
def test_the_node_core_runs_an_export_without_torch(runtime_venv, export_dir):
    code = f"""
    import sys
    import numpy as np
    from seem_ros.ros import messages
    from seem_ros.ros.image_codec import rgb_to_image_msg
    from seem_ros.ros.node_core import NodeCore
    from seem_ros.ros.params import NodeParams
    from seem_ros.ros.pipeline import load_segmenter_for

    params = NodeParams(model_path={str(export_dir)!r}, classes="circle; square")
    segmenter = load_segmenter_for(params)
    core = NodeCore(segmenter, params, lambda *_: None, threaded=False)
    image = np.full((240, 320, 3), 90, np.uint8)
    image[60:120, 50:110] = (220, 30, 30)
    header = messages.make_header(1_000, "camera")
    frame = messages.serialize(rgb_to_image_msg(image, header))
    core.feed("image", frame)
    point = messages.TYPESTORE.types[messages.POINT](x=80.0, y=90.0, z=1.0)
    click = messages.TYPESTORE.types[messages.POINT_STAMPED](header=header, point=point)
    core.handle("prompt/point", messages.serialize(click))
    core.handle("prompt/refer", messages.serialize(messages.make_string("the red square")))
    outputs = {{o.key: o for o in core.feed("image", frame)}}
    found = messages.deserialize(outputs["detections"].cdr, outputs["detections"].ros_type)
    print(segmenter.engine.name, sorted(outputs), len(found.detections))
    print("torch loaded:", "torch" in sys.modules)
    """
    result = python(runtime_venv, code)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("onnxruntime ['detections', 'instance_mask', 'overlay']")
    assert int(first.rsplit(" ", 1)[1]) >= 1  # the clicked object at least
    assert "torch loaded: False" in result.stdout


@pytest.mark.slow
def test_bag_runs_the_node_core_on_an_export_without_torch(runtime_venv, export_dir, tmp_path):
    result = seem_ros(
        runtime_venv, "bag", str(SAMPLE_BAG), str(tmp_path / "out_bag"),
        "--model", str(export_dir), "--classes", "circle; star", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out_bag").is_dir()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("export", "--out", "graphs"), "seem_ros[onnx]"),
        (("demo", "--out", "demo_out"), "seem_ros[torch]"),
        (("segment", "x.png", "--out", "o.png"), "seem_ros[torch]"),  # the demo weights
        (("train", "--config", str(REPO / "config" / "train_tiny.yaml")), "seem_ros[train]"),
    ],
)
def test_commands_that_need_pytorch_name_the_extra(runtime_venv, tmp_path, args, hint):
    if args[0] == "segment":
        cv2.imwrite(str(tmp_path / "x.png"), np.zeros((32, 32, 3), np.uint8))
    result = seem_ros(runtime_venv, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert hint in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_help_lists_every_command_without_torch(runtime_venv):
    result = seem_ros(runtime_venv, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("segment", "node", "bag", "export", "demo", "build-engine"):
        assert command in result.stdout
    assert seem_ros(runtime_venv, "segment", "--help").returncode == 0


def torch_view(folder: Path) -> Path:
    """A folder of links to this environment's torch and torchvision and everything they need.

    The CUDA build of torch that pip takes on x86_64 is about 5.5 GB installed; a second copy of
    it for one test filled the disk of a CI machine. Linked in through a ``.pth`` file, these
    distributions are seen by pip as installed (so ``pip install -e '.[torch]'`` adds only what
    the extra brings beyond them) and imported from here.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    folder.mkdir(parents=True)
    pending, seen = ["torch", "torchvision"], set()
    while pending:
        name = pending.pop()
        dist = metadata.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        site = Path(dist.locate_file(""))
        for top in {Path(file).parts[0] for file in dist.files or ()} - {".."}:
            if (site / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(site / top)
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return folder


@pytest.mark.slow
def test_the_readmes_main_job_runs_once_the_torch_extra_is_added(runtime_venv, tmp_path):
    """Last in this file: it adds PyTorch to the shared venv (cheaper than a second venv), after
    which the venv is no longer torch-free. torch and torchvision are this environment's own,
    the README's pinned versions, linked in (see :func:`torch_view`); the rest of the extra is
    installed by pip."""
    view = torch_view(tmp_path / "torch_view")
    site_packages = python(runtime_venv, "import sysconfig; print(sysconfig.get_path('purelib'))")
    (Path(site_packages.stdout.strip()) / "torch_view.pth").write_text(f"{view}\n")
    install = subprocess.run(
        [
            str(runtime_venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-e",
            f"{REPO}[torch]",
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    where = python(runtime_venv, "import torch, torchvision; print(torch.__file__)")
    assert where.stdout.startswith(str(view)), where.stdout + where.stderr

    result = seem_ros(runtime_venv, "demo", "--out", str(tmp_path / "demo_out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo_out" / "summary.png").is_file()
