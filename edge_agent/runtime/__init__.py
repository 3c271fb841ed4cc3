"""The llama.cpp runtime as the project builds it: self-check, host report, tuning.

``packaging/runtime/build.py`` builds and caches llama-cpp-python with the project's
patches and flags; this package checks the installed result in a child process
(``selfcheck``), describes the host and the build (``report``, shown by
``edge-agent doctor``) and chooses how the engine uses it (``tuning``).
"""
