"""Package list: everything under algm_export/, plus the top-level calibration/ folder installed as
``algm_export.calibration`` (pyproject.toml cannot combine package discovery with such a mapping)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["algm_export*"]), "algm_export.calibration"],
    package_dir={"algm_export.calibration": "calibration"},
)
