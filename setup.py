"""Build script: the Cython extensions and the package layout.

Switches (environment variables), in the spirit of msgspec's setup.py:
  RELAAX_ZMQ_DEBUG=1          build with -O0 -g and Cython bounds checks on
  RELAAX_ZMQ_SANITIZE=address build with a sanitizer (address, undefined, ...)
  RELAAX_ZMQ_NATIVE=1         tune for the build machine (-march=native)
"""

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup
from setuptools.command.build_py import build_py

DEBUG = os.environ.get("RELAAX_ZMQ_DEBUG") == "1"
SANITIZE = os.environ.get("RELAAX_ZMQ_SANITIZE", "")
NATIVE = os.environ.get("RELAAX_ZMQ_NATIVE") == "1"

compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]
link_args: list[str] = []
if NATIVE:
    compile_args.append("-march=native")
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
    link_args.append(f"-fsanitize={SANITIZE}")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
}


def extension(name: str, source: str, openmp: bool = False) -> Extension:
    # openmp: parallel loops (cython.parallel.prange); without it they run serially
    omp = ["-fopenmp"] if openmp else []
    return Extension(
        name,
        [source],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args + omp,
        extra_link_args=link_args + omp,
    )


#: Top-level source folders installed under relaax_zmq (the layout the design names).
MAPPED = {
    "relaax_zmq.broker": "broker",
    "relaax_zmq.algorithms": "algorithms",
    "relaax_zmq.envs": "envs",
}


#: Folders of data files only, listed as (namespace) packages so that setuptools ships them
#: without its "Package would be ignored" warning.
DATA_PACKAGES = [
    "relaax_zmq.protocol.testdata",
    # the JavaScript client, which the gateway serves at /client/
    "relaax_zmq.envs.js",
    "relaax_zmq.envs.js.src",
    "relaax_zmq.envs.js.src.testing",
]


def _packages() -> list[str]:
    """Every package under relaax_zmq/ and the mapped folders, subpackages included."""
    found = ["relaax_zmq", *DATA_PACKAGES]
    found += [f"relaax_zmq.{p}" for p in find_packages("relaax_zmq")]
    for name, folder in MAPPED.items():
        found += [name] + [f"{name}.{p}" for p in find_packages(folder)]
    return found


class BuildWithDocs(build_py):
    """build_py that also ships docs/*.md as relaax_zmq/docs (the CLI names these pages)."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "relaax_zmq" / "docs"
        self.mkpath(str(target))
        for page in sorted((Path(__file__).resolve().parent / "docs").glob("*.md")):
            self.copy_file(str(page), str(target / page.name))


setup(
    cmdclass={"build_py": BuildWithDocs},
    packages=_packages(),
    package_dir={"relaax_zmq": "relaax_zmq", **MAPPED},
    package_data={
        "relaax_zmq": ["py.typed"],
        "relaax_zmq.protocol.testdata": ["*.txt"],
        # the bundled presets (relaax-zmq config -l, new): links to conf/ files in the tree
        "relaax_zmq.presets": ["*.yaml"],
        "relaax_zmq.envs.js": ["package.json"],
        "relaax_zmq.envs.js.src": ["*.js"],
        "relaax_zmq.envs.js.src.testing": ["*.js"],
    },
    ext_modules=cythonize(
        [
            extension("relaax_zmq._codec", "ext/codec.pyx"),
            extension("relaax_zmq._kernels", "ext/kernels.pyx", openmp=True),
        ],
        compiler_directives=directives,
    ),
    zip_safe=False,
)
