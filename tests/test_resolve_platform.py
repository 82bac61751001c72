"""tools/resolve_platform.py: the tags a JetPack 6 device accepts, and the requirement list it resolves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("resolve_platform",
                                               Path(__file__).resolve().parents[1] / "tools" / "resolve_platform.py")
resolve_platform = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(resolve_platform)


def test_a_glibc_2_35_device_accepts_manylinux_2_17_up_to_2_35_and_nothing_newer():
    tags = resolve_platform.manylinux_tags("aarch64", "2.35")
    assert {"manylinux_2_35_aarch64", "manylinux_2_28_aarch64", "manylinux_2_17_aarch64",
            "manylinux2014_aarch64"} <= set(tags)
    assert "manylinux_2_36_aarch64" not in tags and "manylinux_2_16_aarch64" not in tags


def test_the_device_requirements_are_the_base_plus_the_extra_and_no_torch():
    reqs = resolve_platform.requirements(["openvino"])
    names = {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0] for r in reqs}
    assert {"numpy", "tokenizers", "pillow", "simplejpeg", "openvino"} <= names
    assert not names & {"torch", "transformers", "opencv-python-headless"}


def test_an_unknown_extra_is_named():
    with pytest.raises(SystemExit, match="unknown extra.*'jetson'"):
        resolve_platform.requirements(["jetson"])
