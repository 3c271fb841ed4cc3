"""The llama.cpp runtime as the project builds it: self-check, host report, kernels.

``packaging/runtime/build.py`` builds and caches llama-cpp-python with the project's
patches and flags; this package checks the installed result in a child process
(``selfcheck``), describes the host and the build (``report``, shown by
``edge-agent doctor``) and runs its matrix kernels without a model (``kernels``, for the
kernel tests and benchmark). How the engine uses the runtime (threads, the cost curve
of a verify step) is ``edge_agent.engine``'s part.
"""
