"""What the wheel collector reads from a wheel and from the device's package list (the
downloads themselves need a registry, so they are not run here)."""

import zipfile

from tests.gpu import wheels


def test_requirements_are_those_the_device_needs(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    metadata = "\n".join(
        [
            "Name: demo",
            "Requires-Dist: dill>=0.3",
            "Requires-Dist: tomli; python_version < '3.11'",
            "Requires-Dist: pywin32; sys_platform == 'win32'",
            "Requires-Dist: pytest; extra == 'test'",
            "Requires-Dist: typing-extensions; python_version >= '3.8'",
        ]
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", metadata)
    assert wheels.requirements(wheel) == ["dill", "typing-extensions"]


def test_the_device_has_torch_but_not_avalanche():
    present = wheels.device_packages()
    assert {"torch", "torchvision", "safetensors", "rich"} <= present
    assert not {"avalanche-lib", "mlxtend", "dill"} & present
