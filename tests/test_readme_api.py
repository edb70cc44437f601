"""The Python API the README names exists under the names it uses (README "PackNet in
your own Avalanche experiments"); tests/test_readme.py runs its commands."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from strategies.packnet import PackNetPlugin

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_imported_name_exists():
    imports = re.findall(r"^from ([\w.]+) import (.+)$", README, flags=re.MULTILINE)
    assert any(module == "strategies.packnet" for module, _ in imports)
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(loaded, name.strip()), f"{module}.{name.strip()}"


def test_plugin_methods_named_as_the_plugin_methods_they_are():
    methods = set(re.findall(r"`packnet\.(\w+)\(", README))
    assert methods >= {"pack_without_training", "weight_usage", "mask_bits"}
    assert all(callable(getattr(PackNetPlugin, name, None)) for name in methods)
    for name in methods:  # never as bare functions, as if importable
        assert not re.search(rf"`{name}\(", README), name
