"""A matrix product through the installed runtime's own ggml, without a model.

Used by the kernel tests (``tests/runtime/test_kernels.py``) and the kernel benchmark
(``benchmarks/kernels.py``). Each builds one ``mul_mat`` graph per case: a weight matrix quantized by
ggml itself (``ggml_quantize_chunk``) and placed in a chosen buffer type (``CPU``, the
repacking ``CPU_REPACK``, ``AMX``, as the CPU backend offers them), times ``rows``
activation rows, computed by the CPU backend with ``threads`` threads. Setting the
weights into an extra buffer type converts them the way model loading does, and the CPU
backend then runs that buffer's kernels, so this reaches exactly the kernels a verify
step reaches. Only ggml's C API is used (through ctypes), from the libraries that
llama-cpp-python loads (``LLAMA_CPP_LIB_PATH`` points at another build).
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10,
         "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "IQ4_NL": 20, "IQ4_XS": 23, "BF16": 30}
_P = ctypes.c_void_p


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", _P), ("no_alloc", ctypes.c_bool)]


def lib_dir() -> Path:
    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    if override:
        return Path(override)
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")  # located, not imported
    if spec is None or spec.origin is None:
        raise RuntimeError("llama_cpp is not installed")
    return Path(spec.origin).parent / "lib"


def _load() -> ctypes.CDLL:
    """ggml by the names libllama links (``libggml*.so.0``): a wheel ships the unversioned
    names as separate copies, and a second copy would have buffer types of its own."""
    d = lib_dir()
    handle = None
    for name in ("libggml-base", "libggml-cpu", "libggml"):
        path = next((p for p in (d / f"{name}.so.0", d / f"{name}.so") if p.exists()), None)
        if path is not None:
            handle = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    if handle is None:
        raise RuntimeError(f"no ggml libraries in {d}")
    return handle


def _sig(lib: ctypes.CDLL, name: str, res: object, *args: object) -> None:
    fn = getattr(lib, name)
    fn.restype = res
    fn.argtypes = list(args)


class Ggml:
    """The few ggml entry points a matrix product needs."""

    def __init__(self) -> None:
        lib = self.lib = _load()
        i64, sz = ctypes.c_int64, ctypes.c_size_t
        _sig(lib, "ggml_init", _P, _InitParams)
        _sig(lib, "ggml_free", None, _P)
        _sig(lib, "ggml_new_tensor_2d", _P, _P, ctypes.c_int, i64, i64)
        _sig(lib, "ggml_mul_mat", _P, _P, _P, _P)
        _sig(lib, "ggml_new_graph", _P, _P)
        _sig(lib, "ggml_build_forward_expand", None, _P, _P)
        _sig(lib, "ggml_nbytes", sz, _P)
        _sig(lib, "ggml_row_size", sz, ctypes.c_int, i64)
        _sig(lib, "ggml_quantize_chunk", sz, ctypes.c_int, _P, _P, i64, i64, i64, _P)
        _sig(lib, "ggml_quantize_init", None, ctypes.c_int)
        _sig(lib, "ggml_backend_cpu_init", _P)
        _sig(lib, "ggml_backend_cpu_set_n_threads", None, _P, ctypes.c_int)
        _sig(lib, "ggml_backend_graph_compute", ctypes.c_int, _P, _P)
        _sig(lib, "ggml_backend_free", None, _P)
        _sig(lib, "ggml_backend_alloc_ctx_tensors_from_buft", _P, _P, _P)
        _sig(lib, "ggml_backend_buffer_free", None, _P)
        _sig(lib, "ggml_backend_tensor_set", None, _P, _P, sz, sz)
        _sig(lib, "ggml_backend_tensor_get", None, _P, _P, sz, sz)
        _sig(lib, "ggml_backend_cpu_buffer_type", _P)
        _sig(lib, "ggml_backend_buft_name", ctypes.c_char_p, _P)
        _sig(lib, "ggml_backend_dev_by_type", _P, ctypes.c_int)
        _sig(lib, "ggml_backend_dev_backend_reg", _P, _P)
        _sig(lib, "ggml_backend_reg_get_proc_address", _P, _P, ctypes.c_char_p)
        _sig(lib, "ggml_backend_dev_supports_op", ctypes.c_bool, _P, _P)
        self.backend = lib.ggml_backend_cpu_init()

    def buffer_types(self) -> dict[str, int]:
        """The CPU device's buffer types by name: ``CPU`` and its extra ones."""
        lib = self.lib
        out = {lib.ggml_backend_buft_name(lib.ggml_backend_cpu_buffer_type()).decode(): lib.ggml_backend_cpu_buffer_type()}
        dev = lib.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
        addr = lib.ggml_backend_reg_get_proc_address(lib.ggml_backend_dev_backend_reg(dev), b"ggml_backend_dev_get_extra_bufts")
        if addr:
            get = ctypes.CFUNCTYPE(ctypes.POINTER(_P), _P)(addr)
            extra = get(dev)
            i = 0
            while extra and extra[i]:
                out[lib.ggml_backend_buft_name(extra[i]).decode()] = extra[i]
                i += 1
        return out

    def quantize(self, type_name: str, w: npt.NDArray[np.float32]) -> bytes:
        t = TYPES[type_name]
        n, k = w.shape
        if t == 0:
            return w.astype(np.float32).tobytes()
        if t == 1:
            return w.astype(np.float16).tobytes()
        self.lib.ggml_quantize_init(t)
        out = ctypes.create_string_buffer(self.lib.ggml_row_size(t, k) * n)
        src = np.ascontiguousarray(w, dtype=np.float32)
        self.lib.ggml_quantize_chunk(t, src.ctypes.data, out, 0, n, k, None)
        return out.raw

    def close(self) -> None:
        if self.backend:
            self.lib.ggml_backend_free(self.backend)
            self.backend = None


class MatMul:
    """``W (n x k, quantized, in one buffer type) @ x.T`` for any number of rows of x.

    The weights are set into their buffer once (converted there as model loading
    converts them) and kept until ``close``."""

    def __init__(self, g: Ggml, type_name: str, buft: int, weights: bytes, n: int, k: int) -> None:
        self.g, self.type_name, self.buft, self.weights, self.n, self.k = g, type_name, buft, weights, n, k
        lib = g.lib
        self._wctx = lib.ggml_init(_InitParams(1 << 20, None, True))
        self._w = lib.ggml_new_tensor_2d(self._wctx, TYPES[type_name], k, n)
        self._wbuf = lib.ggml_backend_alloc_ctx_tensors_from_buft(self._wctx, buft)
        self._set = False
        if not self._wbuf:
            raise RuntimeError(f"cannot allocate {type_name} {n}x{k} weights")

    def supported(self) -> bool:
        """Whether the CPU device runs this product with the weights in this buffer type
        (model loading asks the same before it places a tensor in an extra buffer)."""
        lib = self.g.lib
        ctx = lib.ggml_init(_InitParams(1 << 16, None, True))
        try:
            y = lib.ggml_mul_mat(ctx, self._w, lib.ggml_new_tensor_2d(ctx, 0, self.k, 2))
            return bool(lib.ggml_backend_dev_supports_op(lib.ggml_backend_dev_by_type(0), y))
        finally:
            lib.ggml_free(ctx)

    def __call__(self, x: npt.NDArray[np.float32], threads: int) -> npt.NDArray[np.float32]:
        out, _ = self.run(x, threads, repeats=1)
        return out

    def run(self, x: npt.NDArray[np.float32], threads: int, repeats: int) -> tuple[npt.NDArray[np.float32], list[float]]:
        """The product, and the seconds each of ``repeats`` computations took."""
        lib, rows = self.g.lib, x.shape[0]
        if not self._set:
            lib.ggml_backend_tensor_set(self._w, self.weights, 0, len(self.weights))
            self._set = True
        xctx = lib.ggml_init(_InitParams(1 << 20, None, True))
        xbuf = None
        try:
            xt = lib.ggml_new_tensor_2d(xctx, 0, self.k, rows)
            y = lib.ggml_mul_mat(xctx, self._w, xt)
            graph = lib.ggml_new_graph(xctx)
            lib.ggml_build_forward_expand(graph, y)
            xbuf = lib.ggml_backend_alloc_ctx_tensors_from_buft(xctx, lib.ggml_backend_cpu_buffer_type())
            xs = np.ascontiguousarray(x, dtype=np.float32)
            lib.ggml_backend_tensor_set(xt, xs.ctypes.data, 0, xs.nbytes)
            lib.ggml_backend_cpu_set_n_threads(self.g.backend, threads)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                if lib.ggml_backend_graph_compute(self.g.backend, graph) != 0:
                    raise RuntimeError("ggml_backend_graph_compute failed")
                times.append(time.perf_counter() - t)
            out = np.empty((rows, self.n), dtype=np.float32)
            lib.ggml_backend_tensor_get(y, out.ctypes.data, 0, out.nbytes)
            return out, times
        finally:
            if xbuf:
                lib.ggml_backend_buffer_free(xbuf)
            lib.ggml_free(xctx)

    def close(self) -> None:
        if self._wbuf:
            self.g.lib.ggml_backend_buffer_free(self._wbuf)
            self._wbuf = None
        if self._wctx:
            self.g.lib.ggml_free(self._wctx)
            self._wctx = None


def amx_takes(type_name: str, n: int, k: int) -> bool:
    """What the AMX buffer's ``supports_op`` accepts (the scheduler sends it nothing else)."""
    align = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256, "Q6_K": 256, "IQ4_XS": 256}
    return type_name in align and n % 32 == 0 and k % align[type_name] == 0
