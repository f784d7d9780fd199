"""Test-only: the notebook kernels that tests/test_notebooks.py starts load the torchvision stand-in.

Python imports `sitecustomize` at start-up from the path; the notebook test puts this folder on the kernel's
PYTHONPATH, so a kernel on the test machine imports open_clip as the test process does (see
tests/torchvision_stand_in.py: it does nothing where torchvision imports).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torchvision_stand_in  # noqa: E402

sys.meta_path.insert(0, torchvision_stand_in.TorchvisionShim())
