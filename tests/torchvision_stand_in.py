"""Test-only: import open_clip and transformers on the test machine, where torchvision does not import.

Why this exists: the machine the tests and CI run on has a CPU-only torch (a local `torch-2.13.0+cpu`
wheel), but the only torchvision 0.28.0 that pip can reach there is PyPI's, a CUDA build; it fails
on import ("operator torchvision::nms does not exist"), and with it `import open_clip` and
sentence-transformers (transformers imports torchvision when it is installed). PyTorch's CPU wheel
index, which has the matching torchvision, is out of reach there. Users install a matching pair
instead (README, "Install"), and denoiser imports open_clip plainly.

So that the tests still run the real open_clip code, conftest.py loads this file as a pytest plugin.
The first time open_clip, transformers, sentence_transformers or timm is imported, torchvision is
tried; if it imports, nothing else happens. Otherwise:

1. torchvision is marked missing (`sys.modules["torchvision"] = None`), so transformers goes on
   without it;
2. open_clip is executed with a stand-in torchvision that holds just the names open_clip imports.
   Using any of them raises an error. denoiser resizes, crops and normalizes images itself, so the
   plain CLIP models work; open_clip's towers from transformers and timm do not.
"""

from __future__ import annotations

import enum
import functools
import importlib.abc
import importlib.machinery
import sys
import types

# Libraries that import torchvision when it is installed; the first import of any of them checks it.
TORCHVISION_USERS = ("open_clip", "transformers", "sentence_transformers", "timm")
# Imported by open_clip only when they are installed; kept out while the stand-in is in place,
# so they never see it (transformers and timm check for, or import, torchvision themselves).
OPTIONAL_OPEN_CLIP_IMPORTS = ("transformers", "timm")


def pytest_configure(config):
    sys.meta_path.insert(0, TorchvisionShim())


@functools.cache
def torchvision_imports() -> bool:
    """True if torchvision imports; otherwise mark it missing and say False."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # RuntimeError for a build that does not fit torch
        forget_torchvision()
        return False
    return True


class TorchvisionShim(importlib.abc.MetaPathFinder):
    """Checks torchvision before its first user is imported, and loads open_clip with the stand-in if needed."""

    def find_spec(self, name, path=None, target=None):
        if name not in TORCHVISION_USERS or torchvision_imports():
            return None  # the usual finders go on
        if name != "open_clip":
            return None  # torchvision is marked missing now, which transformers and timm handle
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = WithStandInTorchvision(spec.loader)
        return spec


class WithStandInTorchvision(importlib.abc.Loader):
    """open_clip's own loader, run while the stand-in torchvision is in `sys.modules`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        kept_out = [name for name in OPTIONAL_OPEN_CLIP_IMPORTS if name not in sys.modules]
        sys.modules.update(stand_in_modules())
        sys.modules.update({name: None for name in kept_out})
        try:
            self.loader.exec_module(module)
        finally:
            forget_torchvision()
            for name in kept_out:
                sys.modules.pop(name, None)


def forget_torchvision() -> None:
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision"] = None  # `import torchvision` now raises ImportError; find_spec says None


def unavailable(name: str) -> type:
    """A class that can be named, subclassed and used as a default, but not used."""

    def refuse(*args, **kwargs):
        raise RuntimeError(f"torchvision.{name} is a test stand-in: torchvision does not import on this machine.")

    return type(name, (), {"__init__": refuse})


def stand_in_module(name: str, package: bool = False, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    module.__dict__.update(attributes)
    return module


def stand_in_modules() -> dict[str, types.ModuleType]:
    """The modules and names that `import open_clip` takes from torchvision."""
    interpolation = enum.Enum("InterpolationMode", {"NEAREST": "nearest", "BILINEAR": "bilinear", "BICUBIC": "bicubic"})
    functional = stand_in_module("torchvision.transforms.functional")
    transform_names = ("Normalize", "Compose", "RandomResizedCrop", "ToTensor", "Resize", "CenterCrop")
    transform_names += ("ColorJitter", "Grayscale")
    transforms = stand_in_module(
        "torchvision.transforms",
        package=True,
        functional=functional,
        InterpolationMode=interpolation,
        **{name: unavailable(name) for name in transform_names},
    )
    misc = stand_in_module("torchvision.ops.misc", FrozenBatchNorm2d=unavailable("FrozenBatchNorm2d"))
    ops = stand_in_module("torchvision.ops", package=True, misc=misc)
    torchvision = stand_in_module("torchvision", package=True, transforms=transforms, ops=ops)
    return {module.__name__: module for module in (torchvision, transforms, functional, ops, misc)}
