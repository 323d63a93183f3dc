"""The robustness studies in tools/robustness/ as the tests load them: scripts, not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools" / "robustness"
DEMO = ROOT / "models" / "seem_tiny_demo.safetensors"


def tool_path(name: str) -> Path:
    return TOOLS / f"{name}.py"


def load_tool(name: str) -> ModuleType:
    """The script ``tools/robustness/<name>.py`` as a module; it imports its sibling
    ``_variant_args`` as a script would, so that folder goes on the path first."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(name, tool_path(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
