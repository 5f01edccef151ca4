"""Packaging metadata: an install prints no setuptools deprecation block."""

from __future__ import annotations

import warnings
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_pyproject_reads_without_deprecation_warnings_and_names_an_spdx_license():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), PYPROJECT)
    # Only what reading pyproject.toml says counts (a ResourceWarning of another test's garbage may land here).
    assert [str(w.message).splitlines()[0] for w in caught if not issubclass(w.category, ResourceWarning)] == []
    assert dist.metadata.license_expression == "Apache-2.0"
