"""Import open_clip where torchvision cannot be imported, e.g. a CUDA torchvision beside a CPU-only torch.

open_clip imports torchvision when it is imported, for its image transforms and one ResNet layer.
denoiser does not use either: it resizes, crops and normalizes images itself (text.py). On a
machine with a CPU-only torch, pip's torchvision is a CUDA build that fails on import ("operator
torchvision::nms does not exist"), and there is no CPU build of torchvision on PyPI. So:

1. A torchvision that fails to import is marked missing (`sys.modules["torchvision"] = None`), so
   libraries that use it only when present, such as transformers, go on without it.
2. open_clip is then imported with a stand-in torchvision that holds just the names open_clip
   imports. Using any of them raises an error that says torchvision is unavailable. open_clip's
   towers from transformers and timm are unavailable then too; the plain CLIP models (ViT-B-32
   and the like) are not affected.

On Colab, where torch and torchvision match, neither step happens.
"""

from __future__ import annotations

import enum
import functools
import importlib.machinery
import sys
import types

# Imported by open_clip only when they are installed; kept out while the stand-in is in place,
# so they never see it (transformers and timm check for, or import, torchvision themselves).
OPTIONAL_OPEN_CLIP_IMPORTS = ("transformers", "timm")


@functools.cache
def torchvision_works() -> bool:
    """True if torchvision imports; otherwise mark it missing (see the module docstring) and say False."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError when absent, RuntimeError for a build that does not fit torch
        _forget_torchvision()
        return False
    return True


def import_open_clip():
    """`import open_clip`, with the stand-in torchvision where the real one does not work."""
    if torchvision_works():
        import open_clip

        return open_clip
    kept_out = [name for name in OPTIONAL_OPEN_CLIP_IMPORTS if name not in sys.modules]
    sys.modules.update(_stand_in_modules())
    sys.modules.update({name: None for name in kept_out})
    try:
        import open_clip
    finally:
        _forget_torchvision()
        for name in kept_out:
            sys.modules.pop(name, None)
    return open_clip


def _forget_torchvision() -> None:
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules["torchvision"] = None  # `import torchvision` now raises ImportError; find_spec says None


def _unavailable(name: str) -> type:
    """A class that can be named, subclassed and used as a default, but not used."""

    def refuse(*args, **kwargs):
        raise RuntimeError(
            f"torchvision.{name} is not available: torchvision does not import on this machine "
            "(install the torchvision build that matches torch to use open_clip's own image transforms)."
        )

    return type(name, (), {"__init__": refuse})


def _module(name: str, package: bool = False, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    module.__dict__.update(attributes)
    return module


def _stand_in_modules() -> dict[str, types.ModuleType]:
    """The modules and names that `import open_clip` takes from torchvision."""
    interpolation = enum.Enum("InterpolationMode", {"NEAREST": "nearest", "BILINEAR": "bilinear", "BICUBIC": "bicubic"})
    functional = _module("torchvision.transforms.functional")
    transform_names = (
        "Normalize",
        "Compose",
        "RandomResizedCrop",
        "ToTensor",
        "Resize",
        "CenterCrop",
        "ColorJitter",
        "Grayscale",
    )
    transforms = _module(
        "torchvision.transforms",
        package=True,
        functional=functional,
        InterpolationMode=interpolation,
        **{name: _unavailable(name) for name in transform_names},
    )
    misc = _module("torchvision.ops.misc", FrozenBatchNorm2d=_unavailable("FrozenBatchNorm2d"))
    ops = _module("torchvision.ops", package=True, misc=misc)
    torchvision = _module("torchvision", package=True, transforms=transforms, ops=ops)
    return {module.__name__: module for module in (torchvision, transforms, functional, ops, misc)}
