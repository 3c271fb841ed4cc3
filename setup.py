"""Builds the context store's FTS5 ranking function (the rest is in pyproject.toml).

``edge_agent/context/native/ftsrank.c`` is an SQLite extension, not a Python module: the
store loads it into its connections (see ``edge_agent/context/ftsrank.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge_agent.context._ftsrank",
            sources=["edge_agent/context/native/ftsrank.c"],
            libraries=["m"],
            extra_compile_args=["-O2"],
            optional=True,  # without it the store ranks with FTS5's own bm25()
        )
    ],
)
