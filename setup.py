"""Only for the optional C header walk; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and dicomtui uses the Python walk
(same results, about half the import speed).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("dicomtui.core._scan", ["dicomtui/core/_scan.c"], optional=True,
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"])])
