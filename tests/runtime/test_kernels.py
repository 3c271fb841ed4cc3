"""Every matrix kernel a verify step can reach gives each row bit for bit its one-row result.

The contract of the runtime's patches (DESIGN.md, "Exact kernels"): for 1..32 rows,
each output element goes through the same float operations in the same order as the
one-row kernel, whatever the thread count. Checked here without a model, on random
weights quantized by ggml and placed in every buffer type the CPU backend offers on
this host (``CPU``; ``CPU_REPACK`` for the types it repacks here; ``AMX`` where the CPU
has AMX tiles, whose batched tile kernels are kept because they already sum each row in
the one-row order). A type or buffer the host cannot run is skipped with the reason.

The shapes are those of the shipped model's matrices (640, 1024 and 2048 wide) and
large enough that a thread's share spans several of the column tiles the small-batch
path walks, so the tile boundaries are crossed.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

import numpy as np
import pytest

from edge_agent.runtime.kernels import Ggml, MatMul, amx_takes

K_QUANTS = ("Q4_K", "Q5_K", "Q6_K", "Q3_K", "Q2_K", "IQ4_XS")
CPU_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", *K_QUANTS)
REPACK_TYPES = ("Q4_0", "Q4_K", "IQ4_NL", "Q2_K", "Q8_0", "Q5_0", "Q6_K")
ROWS_KERNEL_TYPES = ("Q8_0", "Q5_0", "Q4_K", "Q6_K")  # one kernel for every batch size (patches 0006, 0007)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _x86_rows_kernel() -> None:
    if not X86:
        pytest.skip(f"the rows kernels of patches 0006/0007 are x86 code; this host is {platform.machine()}")
AMX_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS")
MAX_ROWS = 32


@pytest.fixture(scope="module")
def ggml() -> Iterator[Ggml]:
    g = Ggml()
    yield g
    g.close()


@pytest.fixture
def opened() -> Iterator[list[MatMul]]:
    held: list[MatMul] = []
    yield held
    for mm in held:
        mm.close()


def _shape(type_name: str) -> tuple[int, int]:
    """(output columns, input width): K-quants need a multiple of 256."""
    return (2048, 2048) if type_name in K_QUANTS else (2048, 640)


def _weights(ggml: Ggml, type_name: str, buft_name: str, opened: list[MatMul]) -> MatMul:
    bufts = ggml.buffer_types()
    if buft_name not in bufts:
        pytest.skip(f"this host's CPU backend has no {buft_name} buffer (have: {', '.join(bufts)})")
    n, k = _shape(type_name)
    if buft_name == "AMX" and not amx_takes(type_name, n, k):
        pytest.skip(f"the AMX buffer does not take {type_name} {n}x{k}")
    rng = np.random.default_rng(hash((type_name, buft_name)) % 2**32)
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    mm = MatMul(ggml, type_name, bufts[buft_name], ggml.quantize(type_name, w), n, k)
    opened.append(mm)
    if buft_name != "CPU" and not mm.supported():
        pytest.skip(f"this build's {buft_name} buffer does not take {type_name} (model loading keeps it in CPU)")
    return mm


def _check(mm: MatMul) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((MAX_ROWS, mm.k)).astype(np.float32)
    alone = np.stack([mm(x[i : i + 1], threads=2)[0] for i in range(MAX_ROWS)])
    assert np.all(np.isfinite(alone)) and np.any(alone != 0)
    assert np.array_equal(mm(x[:1], threads=1)[0], alone[0]), "one row differs between 1 and 2 threads"
    for rows in range(2, MAX_ROWS + 1):
        for threads in (1, 2):
            got = mm(x[:rows], threads=threads)
            bad = np.flatnonzero(np.any(got != alone[:rows], axis=1))
            assert bad.size == 0, (
                f"{mm.type_name}: a batch of {rows} rows on {threads} thread(s) differs from the one-row "
                f"result in rows {bad.tolist()} (max |diff| {float(np.max(np.abs(got - alone[:rows]))):.3g})"
            )


@pytest.mark.parametrize("type_name", CPU_TYPES)
def test_cpu_buffer_rows_equal_one_row(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    _check(_weights(ggml, type_name, "CPU", opened))


@pytest.mark.parametrize("type_name", REPACK_TYPES)
def test_repacked_rows_equal_one_row(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    _check(_weights(ggml, type_name, "CPU_REPACK", opened))


@pytest.mark.parametrize("type_name", AMX_TYPES)
def test_amx_tile_rows_equal_one_row(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    """AMX M > 1 runs the tile kernels; they must agree with the M = 1 VNNI kernel."""
    _check(_weights(ggml, type_name, "AMX", opened))


def test_amx_q5_0_computes_the_q5_0_product(ggml: Ggml, opened: list[MatMul]) -> None:
    """The AMX buffer widens Q5_0 blocks to Q8_0: the same weights, so the product agrees
    with the CPU buffer's Q5_0 kernel up to the order of the float sums (a misplaced fifth
    bit would move outputs by a whole quantization step)."""
    amx = _weights(ggml, "Q5_0", "AMX", opened)
    n, k = _shape("Q5_0")
    rng = np.random.default_rng(hash(("Q5_0", "AMX")) % 2**32)
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    cpu = MatMul(ggml, "Q5_0", ggml.buffer_types()["CPU"], ggml.quantize("Q5_0", w), n, k)
    opened.append(cpu)
    x = np.random.default_rng(11).standard_normal((5, k)).astype(np.float32)
    for rows in (1, 5):
        want, got = cpu(x[:rows], threads=2), amx(x[:rows], threads=2)
        assert np.allclose(got, want, rtol=0, atol=1e-4 * float(np.max(np.abs(want)))), (
            f"AMX Q5_0 differs from CPU Q5_0 by up to {float(np.max(np.abs(got - want))):.3g} at {rows} row(s)")


def test_the_batched_path_is_really_another_kernel(ggml: Ggml, opened: list[MatMul]) -> None:
    """The check above can fail: past 32 rows (prompt processing) the batched kernels,
    which sum in another order, are used, and some row then differs from one-row. (A
    build without such kernels, the portable one, has nothing to show.)"""
    rng = np.random.default_rng(3)
    tried = []
    for type_name in ("F32", "F16", "Q4_0", "IQ4_NL", "Q4_K"):
        mm = _weights(ggml, type_name, "CPU", opened)
        x = rng.standard_normal((64, mm.k)).astype(np.float32)
        batched = mm(x, threads=2)
        alone = np.stack([mm(x[i : i + 1], threads=2)[0] for i in range(64)])
        if not np.array_equal(batched, alone):
            return
        tried.append(type_name)
    pytest.skip(f"this build computes 64 rows of {', '.join(tried)} as it computes one (no batched kernels)")


@pytest.mark.parametrize("type_name", REPACK_TYPES)
def test_repacked_product_is_the_product(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    """A repacked matrix computes the same product as the plain one (the repack loses no
    weight, a misplaced byte or scale moves outputs by whole quantization steps), up to
    the order of the float sums, at one row and at several."""
    repacked = _weights(ggml, type_name, "CPU_REPACK", opened)
    n, k = _shape(type_name)
    rng = np.random.default_rng(hash((type_name, "CPU_REPACK")) % 2**32)
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    cpu = MatMul(ggml, type_name, ggml.buffer_types()["CPU"], ggml.quantize(type_name, w), n, k)
    opened.append(cpu)
    x = np.random.default_rng(13).standard_normal((40, k)).astype(np.float32)
    for rows in (1, 5, 17, 40):
        want, got = cpu(x[:rows], threads=2), repacked(x[:rows], threads=2)
        assert np.allclose(got, want, rtol=0, atol=1e-4 * float(np.max(np.abs(want)))), (
            f"CPU_REPACK {type_name} differs from CPU {type_name} by up to "
            f"{float(np.max(np.abs(got - want))):.3g} at {rows} row(s)")


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """fmaf on float32 arrays, correctly rounded: the product is exact in float64, the sum
    is rounded once to float64 with its error kept (two-sum), and where that rounding
    landed exactly on a float32 halfway point the error decides the side."""
    p = a.astype(np.float64) * b.astype(np.float64)
    c64 = c.astype(np.float64)
    s = p + c64
    bb = s - p
    err = (p - (s - bb)) + (c64 - bb)
    r = s.astype(np.float32)
    lo, hi = np.nextafter(r, np.float32(-np.inf)), np.nextafter(r, np.float32(np.inf))
    # s halfway between r and a neighbour: the exact value p + c is off it by err
    up = (s == (r.astype(np.float64) + hi.astype(np.float64)) / 2) & (err > 0)
    down = (s == (r.astype(np.float64) + lo.astype(np.float64)) / 2) & (err < 0)
    return np.where(up, hi, np.where(down, lo, r))


def _q8_0_values(type_name: str, raw: bytes, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scales n x blocks float32, values n x k int64) of Q8_0 or Q5_0 rows as ggml stores them."""
    nb = k // 32
    if type_name == "Q8_0":
        blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n, nb, 34)
        d = blocks[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
        q = blocks[:, :, 2:].view(np.int8).astype(np.int64)
    else:  # Q5_0: fp16 scale, 32 fifth bits, 16 bytes of nibbles
        blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n, nb, 22)
        d = blocks[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
        qh = blocks[:, :, 2:6].copy().view("<u4")[:, :, 0].astype(np.int64)
        qs = blocks[:, :, 6:].astype(np.int64)
        j = np.arange(16)
        lo = (qs & 0x0F) | (((qh[:, :, None] >> j) & 1) << 4)
        hi = (qs >> 4) | (((qh[:, :, None] >> (j + 16)) & 1) << 4)
        q = np.concatenate([lo, hi], axis=2) - 16
    return d, q.reshape(n, nb * 32)


def _exact_activations(seed: int, rows: int, nb: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values rows x nb x block, scales rows x nb, the float rows): each block a power of two
    times integers in [-127, 127] with a full-scale element, so ggml quantizes it exactly."""
    rng = np.random.default_rng(seed)
    xq = rng.integers(-127, 128, size=(rows, nb, block))
    xq[:, :, 0] = np.where(rng.random((rows, nb)) < 0.5, 127, -127)
    xd = np.exp2(-rng.integers(4, 12, size=(rows, nb))).astype(np.float32)
    return xq, xd, (xq * xd[:, :, None]).reshape(rows, nb * block).astype(np.float32)


def _assert_documented_order(mm: MatMul, x: np.ndarray, want: np.ndarray) -> None:
    for r in (1, len(x)):
        got = mm(x[:r], threads=2)
        bad = np.argwhere(got != want[:r])
        assert bad.size == 0, (f"{mm.type_name} CPU_REPACK at {r} row(s) differs from the documented order at "
                               f"{len(bad)} outputs, e.g. row/col {bad[0].tolist()}: {got[tuple(bad[0])]!r} vs {want[tuple(bad[0])]!r}")


@pytest.mark.parametrize("type_name", ("Q8_0", "Q5_0"))
def test_repacked_q8_0_kernel_keeps_its_documented_order(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    """The repacked Q8_0/Q5_0 kernel (runtime patch 0006) sums in one order on every
    instruction set: per output and block in order, the exact integer sum of the block,
    then acc = fma(isum, d_w * d_x, acc) from 0. Recomputed here in numpy with a correctly
    rounded fma, its output must be equal bit for bit, so the AVX-512 VNNI, AVX2 and scalar
    paths give the same bits (each host runs the path it has). The activations are block
    multiples of a power of two with a full-scale element, so their quantization is exact."""
    _x86_rows_kernel()
    mm = _weights(ggml, type_name, "CPU_REPACK", opened)
    n, k = _shape(type_name)
    nb = k // 32
    rows = 9
    xq, xd, x = _exact_activations(17, rows, nb, 32)
    wd, wq = _q8_0_values(type_name, mm.weights, n, k)
    isum = np.einsum("rbi,nbi->rnb", xq, wq.reshape(n, nb, 32)).astype(np.float32)  # exact: |isum| < 2**20
    acc = np.zeros((rows, n), dtype=np.float32)
    for b in range(nb):
        scale = wd[None, :, b] * xd[:, b, None]  # float32 product, correctly rounded
        acc = _fma32(isum[:, :, b], scale, acc)
    _assert_documented_order(mm, x, acc)


@pytest.mark.parametrize("type_name", ROWS_KERNEL_TYPES)
def test_rows_kernel_types_are_exact_past_32_rows(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    """Where the x86 repack runs one kernel for every batch size, a prompt-sized batch
    (64 rows) also gives every row its one-row result."""
    _x86_rows_kernel()
    mm = _weights(ggml, type_name, "CPU_REPACK", opened)
    x = np.random.default_rng(5).standard_normal((64, mm.k)).astype(np.float32)
    alone = np.stack([mm(x[i : i + 1], threads=2)[0] for i in range(64)])
    assert np.array_equal(mm(x, threads=2), alone)


def _k_values(type_name: str, raw: bytes, n: int, k: int) -> tuple[np.ndarray, ...]:
    """(d, dmin: n x blocks float32; sc, m: n x blocks x sub-blocks int64; q: n x blocks x 256
    int64, the unsigned values) of Q4_K or Q6_K rows, so that w = d * sc * q - dmin * m."""
    nb = k // 256
    if type_name == "Q4_K":
        b = np.frombuffer(raw, dtype=np.uint8).reshape(n, nb, 144).astype(np.int64)
        d = b[:, :, 0:2].astype(np.uint8).copy().view(np.float16)[:, :, 0].astype(np.float32)
        dmin = b[:, :, 2:4].astype(np.uint8).copy().view(np.float16)[:, :, 0].astype(np.float32)
        sc8, qs = b[:, :, 4:16], b[:, :, 16:]
        sc = np.empty((n, nb, 8), dtype=np.int64)
        m = np.empty((n, nb, 8), dtype=np.int64)
        for j in range(8):
            if j < 4:
                sc[:, :, j], m[:, :, j] = sc8[:, :, j] & 63, sc8[:, :, j + 4] & 63
            else:
                sc[:, :, j] = (sc8[:, :, j + 4] & 0xF) | ((sc8[:, :, j - 4] >> 6) << 4)
                m[:, :, j] = (sc8[:, :, j + 4] >> 4) | ((sc8[:, :, j] >> 6) << 4)
        q = np.concatenate([(qs[:, :, (j // 2) * 32:(j // 2) * 32 + 32] >> (4 * (j % 2))) & 0xF for j in range(8)], axis=2)
        return d, dmin, sc, m, q
    b = np.frombuffer(raw, dtype=np.uint8).reshape(n, nb, 210).astype(np.int64)
    ql, qh = b[:, :, :128], b[:, :, 128:192]
    sc = b[:, :, 192:208].astype(np.uint8).view(np.int8).astype(np.int64)
    d = b[:, :, 208:210].astype(np.uint8).copy().view(np.float16)[:, :, 0].astype(np.float32)
    q = np.empty((n, nb, 256), dtype=np.int64)
    for half in (0, 128):
        lo, hi = ql[:, :, half // 2:half // 2 + 64], qh[:, :, half // 4:half // 4 + 32]
        q[:, :, half:half + 32] = (lo[:, :, :32] & 0xF) | ((hi & 3) << 4)
        q[:, :, half + 32:half + 64] = (lo[:, :, 32:] & 0xF) | (((hi >> 2) & 3) << 4)
        q[:, :, half + 64:half + 96] = (lo[:, :, :32] >> 4) | (((hi >> 4) & 3) << 4)
        q[:, :, half + 96:half + 128] = (lo[:, :, 32:] >> 4) | (((hi >> 6) & 3) << 4)
    return d, d, sc, 32 * sc, q


@pytest.mark.parametrize("type_name", ("Q4_K", "Q6_K"))
def test_repacked_k_quant_kernel_keeps_its_documented_order(ggml: Ggml, opened: list[MatMul], type_name: str) -> None:
    """The repacked Q4_K/Q6_K kernel (patch 0006) in numpy: per output and super block in
    order, A = sum of sc * (sub-block sum of q * x) and B = sum of m * (sub-block sum of x),
    exact integers, then acc = fma(A, d * d_x, acc) and acc = fma(B, -(dmin * d_x), acc)
    from 0: equal bit for bit, on whichever instruction set the host runs."""
    _x86_rows_kernel()
    mm = _weights(ggml, type_name, "CPU_REPACK", opened)
    n, k = _shape(type_name)
    nb = k // 256
    rows = 6
    xq, xd, x = _exact_activations(19, rows, nb, 256)
    d, dmin, sc, m, q = _k_values(type_name, mm.weights, n, k)
    subs = sc.shape[2]
    size = 256 // subs
    acc = np.zeros((rows, n), dtype=np.float32)
    for b in range(nb):
        isum = np.einsum("rsi,nsi->rns", xq[:, b].reshape(rows, subs, size), q[:, b].reshape(n, subs, size))
        xsum = xq[:, b].reshape(rows, subs, size).sum(axis=2)
        a = np.einsum("rns,ns->rn", isum, sc[:, b]).astype(np.float32)  # |a| < 2**31: one rounding
        bb = np.einsum("rs,ns->rn", xsum, m[:, b]).astype(np.float32)
        acc = _fma32(a, d[None, :, b] * xd[:, b, None], acc)
        acc = _fma32(bb, -(dmin[None, :, b] * xd[:, b, None]), acc)
    _assert_documented_order(mm, x, acc)
