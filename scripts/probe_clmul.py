"""How fast this CPU folds with VPCLMULQDQ at each register width (x86-64, AVX-512).

The native module's CRC-32C folds 256 bytes per step with four 512-bit accumulators
(``native/_native.c``). This probe measures the same fold loop, without the CRC
bookkeeping, with 4 and 8 zmm accumulators, 8 ymm and 16 xmm, over a buffer that fits in
L2, and prints GB/s (best of 300 passes). Equal zmm rates and ymm/xmm at a half and a
quarter of them mean the instruction issues at a fixed rate whatever its width: 512-bit
folding is then the ceiling for carry-less-multiply CRC on this core. Needs a C compiler
(``cc``); the compiled probe lives in a temporary directory.

    python scripts/probe_clmul.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

SOURCE = r"""
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SIZE (256 * 1024)
#define ROUNDS 300

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define FOLD(T, clmul, xor3, load, x, k, p) \
    x = xor3(clmul(x, k, 0x00), clmul(x, k, 0x11), load(p), 0x96)

__attribute__((always_inline)) static inline uint64_t zmm(const uint8_t *p, size_t n, int acc)
{
    __m512i k = _mm512_set1_epi64(0x1234567), x[8];
    size_t step = 64 * (size_t)acc;
    for (int j = 0; j < acc; j++)
        x[j] = _mm512_loadu_si512(p + 64 * j);
    for (size_t i = step; i + step <= n; i += step)
        for (int j = 0; j < acc; j++)
            FOLD(, _mm512_clmulepi64_epi128, _mm512_ternarylogic_epi64, _mm512_loadu_si512,
                 x[j], k, p + i + 64 * j);
    for (int j = 1; j < acc; j++)
        x[0] = _mm512_xor_si512(x[0], x[j]);
    return (uint64_t)_mm512_reduce_add_epi64(x[0]);
}

__attribute__((noinline)) static uint64_t zmm4(const uint8_t *p, size_t n) { return zmm(p, n, 4); }
__attribute__((noinline)) static uint64_t zmm8(const uint8_t *p, size_t n) { return zmm(p, n, 8); }

static inline __m256i load256(const uint8_t *p) { return _mm256_loadu_si256((const void *)p); }
static inline __m128i load128(const uint8_t *p) { return _mm_loadu_si128((const void *)p); }

__attribute__((noinline)) static uint64_t ymm(const uint8_t *p, size_t n)
{
    __m256i k = _mm256_set1_epi64x(0x1234567), x[8];
    for (int j = 0; j < 8; j++)
        x[j] = load256(p + 32 * j);
    for (size_t i = 256; i + 256 <= n; i += 256)
        for (int j = 0; j < 8; j++)
            FOLD(, _mm256_clmulepi64_epi128, _mm256_ternarylogic_epi64, load256, x[j], k,
                 p + i + 32 * j);
    for (int j = 1; j < 8; j++)
        x[0] = _mm256_xor_si256(x[0], x[j]);
    return (uint64_t)_mm256_extract_epi64(x[0], 0);
}

__attribute__((noinline)) static uint64_t xmm(const uint8_t *p, size_t n)
{
    __m128i k = _mm_set1_epi64x(0x1234567), x[16];
    for (int j = 0; j < 16; j++)
        x[j] = load128(p + 16 * j);
    for (size_t i = 256; i + 256 <= n; i += 256)
        for (int j = 0; j < 16; j++)
            FOLD(, _mm_clmulepi64_si128, _mm_ternarylogic_epi64, load128, x[j], k,
                 p + i + 16 * j);
    for (int j = 1; j < 16; j++)
        x[0] = _mm_xor_si128(x[0], x[j]);
    return (uint64_t)_mm_extract_epi64(x[0], 0);
}

int main(void)
{
    uint8_t *buf = aligned_alloc(64, SIZE);
    for (size_t i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    const char *names[] = {"zmm, 4 accumulators", "zmm, 8 accumulators",
                           "ymm, 8 accumulators", "xmm, 16 accumulators"};
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    volatile uint64_t sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int v = 0; v < 4; v++) {
            double t = now();
            sink += v == 0 ? zmm4(buf, SIZE) : v == 1 ? zmm8(buf, SIZE)
                  : v == 2 ? ymm(buf, SIZE) : xmm(buf, SIZE);
            t = now() - t;
            if (t < best[v])
                best[v] = t;
        }
    }
    printf("%-22s %8s\n", "fold loop", "GB/s");
    for (int v = 0; v < 4; v++)
        printf("%-22s %8.1f\n", names[v], SIZE / best[v] / 1e9);
    return (int)(sink & 0);
}
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        binary = Path(tmp) / "probe"
        source.write_text(SOURCE)
        flags = ["-O3", "-mavx512f", "-mavx512vl", "-mvpclmulqdq", "-mpclmul"]
        subprocess.run(["cc", *flags, str(source), "-o", str(binary)], check=True)
        subprocess.run([str(binary)], check=True)


if __name__ == "__main__":
    main()
