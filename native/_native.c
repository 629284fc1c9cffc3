/*
 * klog._native: the C half of klog.native (the pure-Python twin is klog/_native_py.py).
 *
 * Formats handled:
 *   - Kafka v2 record batches: scan_batches() checks batch_length (int32 at +8), magic
 *     (int8 at +16) and the CRC-32C (uint32 at +17) over [attributes (+21), batch end).
 *   - Kafka v2 records (what follows an uncompressed 61-byte batch header):
 *     length varint | attributes int8 | timestamp_delta varlong | offset_delta varint |
 *     key_length varint | key | value_length varint | value | header_count varint |
 *     (key_length varint | key utf-8 | value_length varint | value)*
 *     with Kafka's zigzag varints (<= 5 bytes for int32, <= 10 for int64; the bits past the
 *     type's width in the last byte are dropped, as Kafka's ByteUtils does).
 *   - sendfile_slice(): a file region to a non-blocking socket with sendfile(2).
 *
 * Invariants: behaviour -- results, exception types and ValueError/TypeError messages -- is
 * identical to the twin; tests/unit/native/ runs every case against both. Every read is
 * bounds-checked against the caller's range; malformed input gives a ValueError or the scan
 * error tuple, never a crash. No global mutable state after module init (the CRC tables and
 * CPU dispatch are written once there), so it is safe from any thread; scan_batches and
 * sendfile_slice release the GIL while they work on large regions / the kernel.
 *
 * CRC-32C: the best code the CPU runs is chosen at import -- AVX-512 VPCLMULQDQ folding
 * fused with three streams of the crc32 instruction, else the SSE4.2 crc32 instruction in
 * three streams, else portable slice-by-8 tables (x86-specific code is compiled only on
 * x86-64). CRC32C_CODE names the choice.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#if defined(__linux__)
#include <sys/sendfile.h>
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define SCAN_TRUNCATED 1
#define SCAN_BAD_LENGTH 2
#define SCAN_BAD_MAGIC 3
#define SCAN_BAD_CRC 4

#define LOG_OVERHEAD 12
#define MIN_BATCH_LENGTH 49
#define MAGIC_POS 16
#define CRC_POS 17
#define ATTRIBUTES_POS 21
#define LAST_OFFSET_DELTA_POS 23
#define MAX_TIMESTAMP_POS 35

/* Regions smaller than this are scanned with the GIL held: releasing it costs more. */
#define SCAN_NOGIL_BYTES (64 * 1024)

/* ------------------------------------------------------------------------------------ */
/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78)                                */

#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256]; /* slice-by-8 */

static void crc_table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[k][n] = c;
        }
    }
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
              crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
              crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
              crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
/*
 * Hardware CRC-32C after Mark Adler's crc32c.c: the crc32 instruction has a latency of 3
 * cycles but a throughput of 1, so three independent streams over adjacent blocks run in
 * parallel and are then combined by "shifting" a CRC over the zero bytes of a block length
 * (a GF(2) matrix applied through four byte tables).
 */
#define CRC_LONG 8192
#define CRC_SHORT 256

static uint32_t crc_long_shift[4][256];
static uint32_t crc_short_shift[4][256];

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1)
            sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        square[n] = gf2_matrix_times(mat, mat[n]);
}

/* The operator that appends len zero bytes (len a power of two) to a CRC, in even. */
static void crc_zeros_op(uint32_t *even, size_t len)
{
    uint32_t odd[32];
    uint32_t row = 1;
    odd[0] = CRC32C_POLY; /* one zero bit */
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_matrix_square(even, odd); /* two zero bits */
    gf2_matrix_square(odd, even); /* four zero bits */
    do {
        gf2_matrix_square(even, odd);
        len >>= 1;
        if (len == 0)
            return;
        gf2_matrix_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof(odd));
}

static void crc_zeros_tables(uint32_t zeros[4][256], size_t len)
{
    uint32_t op[32];
    crc_zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_matrix_times(op, n);
        zeros[1][n] = gf2_matrix_times(op, n << 8);
        zeros[2][n] = gf2_matrix_times(op, n << 16);
        zeros[3][n] = gf2_matrix_times(op, n << 24);
    }
}

static inline uint32_t crc_shift(uint32_t zeros[4][256], uint32_t crc)
{
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
           zeros[3][crc >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                               size_t len)
{
    uint64_t crc0 = ~crc & 0xffffffffu;
    while (len && ((uintptr_t)p & 7)) {
        crc0 = _mm_crc32_u8((uint32_t)crc0, *p++);
        len--;
    }
    while (len >= 3 * CRC_LONG) {
        uint64_t crc1 = 0, crc2 = 0;
        const uint8_t *end = p + CRC_LONG;
        do {
            crc0 = _mm_crc32_u64(crc0, load_le64(p));
            crc1 = _mm_crc32_u64(crc1, load_le64(p + CRC_LONG));
            crc2 = _mm_crc32_u64(crc2, load_le64(p + 2 * CRC_LONG));
            p += 8;
        } while (p < end);
        crc0 = crc_shift(crc_long_shift, (uint32_t)crc0) ^ crc1;
        crc0 = crc_shift(crc_long_shift, (uint32_t)crc0) ^ crc2;
        p += 2 * CRC_LONG;
        len -= 3 * CRC_LONG;
    }
    while (len >= 3 * CRC_SHORT) {
        uint64_t crc1 = 0, crc2 = 0;
        const uint8_t *end = p + CRC_SHORT;
        do {
            crc0 = _mm_crc32_u64(crc0, load_le64(p));
            crc1 = _mm_crc32_u64(crc1, load_le64(p + CRC_SHORT));
            crc2 = _mm_crc32_u64(crc2, load_le64(p + 2 * CRC_SHORT));
            p += 8;
        } while (p < end);
        crc0 = crc_shift(crc_short_shift, (uint32_t)crc0) ^ crc1;
        crc0 = crc_shift(crc_short_shift, (uint32_t)crc0) ^ crc2;
        p += 2 * CRC_SHORT;
        len -= 3 * CRC_SHORT;
    }
    while (len >= 8) {
        crc0 = _mm_crc32_u64(crc0, load_le64(p));
        p += 8;
        len -= 8;
    }
    while (len) {
        crc0 = _mm_crc32_u8((uint32_t)crc0, *p++);
        len--;
    }
    return ~(uint32_t)crc0;
}

/*
 * Carry-less-multiply folding with AVX-512 VPCLMULQDQ, which goes past the crc32
 * instruction's one 8-byte word per cycle: sixteen 128-bit lanes (256 bytes) are folded
 * forward per step, then into one lane, which the crc32 instruction finishes.
 *
 * A lane loaded little-endian from reflected-CRC data has bit i as the coefficient of
 * x^(127-i), so its low qword a_lo holds the higher powers: lane = a_lo x^64 + a_hi.
 * Moving a lane D bits forward is lane x^D = a_lo x^(D+64) + a_hi x^D (mod P). Multiplying
 * such reversed operands gives the product's encoding shifted by one bit, so the constants
 * are x^(D+63) and x^(D-1) mod P, stored with bit j as the coefficient of x^(63-j). After
 * the last fold the lane is congruent to the whole message, so the CRC of its 16 bytes
 * (from a zero state) is the CRC of the message.
 *
 * A CRC state s (what the crc32 instruction carries) in front of some data acts as s xored
 * into the data's first four bytes. So a state is a lane with a_lo = s and a_hi = 0, and
 * moves forward to any later lane with a single multiplication by x^(D+63) mod P.
 */
#define CRC32C_POLY_NORMAL 0x1edc6f41u

/* a * b mod P, bit d the coefficient of x^d. */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b)
{
    uint32_t r = 0;
    for (int i = 31; i >= 0; i--) {
        r = (r << 1) ^ ((r & 0x80000000u) ? CRC32C_POLY_NORMAL : 0);
        if ((b >> i) & 1)
            r ^= a;
    }
    return r;
}

static uint64_t fold_constant(uint64_t power)
{
    uint32_t r = 1, base = 2; /* x^power mod P by square-and-multiply */
    uint64_t k = 0;
    for (; power; power >>= 1) {
        if (power & 1)
            r = gf2_mulmod(r, base);
        base = gf2_mulmod(base, base);
    }
    for (int d = 0; d < 32; d++)
        if ((r >> d) & 1)
            k |= 1ull << (63 - d);
    return k;
}

/* The (low, high) constants that move a lane distance bits forward. */
static void fold_pair(uint64_t pair[2], uint64_t distance)
{
    pair[0] = fold_constant(distance + 63);
    pair[1] = fold_constant(distance - 1);
}

static struct {
    uint64_t k128[2], k512[2], k1024[2], k1536[2], k2048[2];
    uint64_t lanes[8]; /* lanes 0..2 of a register to lane 3's place; lane 3 stays */
} __attribute__((aligned(64))) fold_k;

#define AVX512_TARGET __attribute__((target("avx2,avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

/* The crc32 instruction over len < 8 bytes. */
__attribute__((target("sse4.2"))) static inline uint64_t crc32_short(uint64_t c, const uint8_t *p,
                                                                     size_t len)
{
    if (len & 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        c = _mm_crc32_u32((uint32_t)c, w);
        p += 4;
    }
    if (len & 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        c = _mm_crc32_u16((uint32_t)c, w);
        p += 2;
    }
    if (len & 1)
        c = _mm_crc32_u8((uint32_t)c, *p);
    return c;
}

AVX512_TARGET static inline __m128i fold128(__m128i a, __m128i k, __m128i next)
{
    return _mm_ternarylogic_epi64(_mm_clmulepi64_si128(a, k, 0x00),
                                  _mm_clmulepi64_si128(a, k, 0x11), next, 0x96);
}

AVX512_TARGET static inline __m512i fold512(__m512i a, __m512i k, __m512i next)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00),
                                     _mm512_clmulepi64_epi128(a, k, 0x11), next, 0x96);
}

AVX512_TARGET static inline __m512i broadcast_pair(const uint64_t pair[2])
{
    return _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)pair));
}

/*
 * x0..x3 are a 256-byte window congruent to everything before p: fold [p, p + len) into it
 * and return the CRC state after all of it. The reductions move every register (then every
 * lane) to the last one's place at once, so their multiplications run in parallel.
 */
AVX512_TARGET __attribute__((always_inline)) static inline uint32_t
fold_finish(__m512i x0, __m512i x1, __m512i x2, __m512i x3, const uint8_t *p, size_t len)
{
    const __m512i k2048 = broadcast_pair(fold_k.k2048);
    while (len >= 256) {
        x0 = fold512(x0, k2048, _mm512_loadu_si512(p));
        x1 = fold512(x1, k2048, _mm512_loadu_si512(p + 64));
        x2 = fold512(x2, k2048, _mm512_loadu_si512(p + 128));
        x3 = fold512(x3, k2048, _mm512_loadu_si512(p + 192));
        p += 256;
        len -= 256;
    }
    const __m512i k512 = broadcast_pair(fold_k.k512);
    const __m512i k1024 = broadcast_pair(fold_k.k1024);
    const __m512i k1536 = broadcast_pair(fold_k.k1536);
    __m512i t0 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x0, k1536, 0x00),
                                           _mm512_clmulepi64_epi128(x0, k1536, 0x11),
                                           _mm512_clmulepi64_epi128(x1, k1024, 0x00), 0x96);
    __m512i t1 = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x1, k1024, 0x11),
                                           _mm512_clmulepi64_epi128(x2, k512, 0x00),
                                           _mm512_clmulepi64_epi128(x2, k512, 0x11), 0x96);
    __m512i x = _mm512_ternarylogic_epi64(t0, t1, x3, 0x96);
    while (len >= 64) {
        x = fold512(x, k512, _mm512_loadu_si512(p));
        p += 64;
        len -= 64;
    }
    const __m512i kl = _mm512_load_si512(fold_k.lanes);
    x = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, kl, 0x00),
                                  _mm512_clmulepi64_epi128(x, kl, 0x11),
                                  _mm512_maskz_mov_epi64(0xc0, x), 0x96);
    __m256i y = _mm256_xor_si256(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
    __m128i a = _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
    const __m128i k128 = _mm_load_si128((const __m128i *)fold_k.k128);
    while (len >= 16) {
        a = fold128(a, k128, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        len -= 16;
    }
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(a));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(a, 1));
    if (len & 8) {
        c = _mm_crc32_u64(c, load_le64(p));
        p += 8;
    }
    return (uint32_t)crc32_short(c, p, len & 7);
}

AVX512_TARGET static uint32_t crc32c_avx512(uint32_t crc, const uint8_t *p, size_t len)
{
    if (len < 256)
        return crc32c_sse42(crc, p, len);
    /* The initial CRC state enters as data: xor it into the first four bytes. */
    __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_maskz_set1_epi32(1, (int)~crc));
    return ~fold_finish(x0, _mm512_loadu_si512(p + 64), _mm512_loadu_si512(p + 128),
                        _mm512_loadu_si512(p + 192), p + 256, len - 256);
}

/*
 * "Fusion" (Peter Cawley's idea, corsix.org "fast CRC32C 4k" and github.com/corsix/fast-crc32):
 * the crc32 instruction and VPCLMULQDQ use mostly different execution units, so both can
 * work at once on different parts of the buffer. A chunk of n steps is laid out as three
 * scalar regions of FUSION_Q * 8 * n bytes, each taken by its own crc32 stream (three hide
 * the instruction's 3-cycle latency), then 256 * n bytes of vector folding. Each step does
 * FUSION_Q words of every stream and one 256-byte fold, the ratio measured best on Zen 4:
 * there VPCLMULQDQ of any width issues every other cycle (16 bytes folded per cycle) and
 * each crc32 still costs it about half a cycle, so fusion gains ~25% rather than 50%
 * (58 -> 73 GB/s from L2, 19.5 bytes per cycle). The first stream starts from
 * the chunk's input state and also takes up to 63 leading bytes, so that the folded region
 * starts on a cache line; it has time to spare, as the folding is the slower part. At the
 * end the three stream states move forward into the window as described above, with
 * constants per n from fusion_k. Longer buffers go chunk by chunk; the rest is folded.
 */
#define FUSION_Q 3
#define FUSION_STEP (256 + 3 * 8 * FUSION_Q)
/* Below this the plain fold is as fast: the streams' setup and merge cost about 6 ns. */
#define FUSION_MIN_BYTES 2048
#define FUSION_MAX_STEPS 64

/* Per n: the constants for streams 1..3, and a zero that pads to 256 bits. */
static uint64_t fusion_k[FUSION_MAX_STEPS + 1][4] __attribute__((aligned(32)));

static void fusion_init(void)
{
    for (uint64_t n = 1; n <= FUSION_MAX_STEPS; n++) {
        uint64_t region = 8 * FUSION_Q * n, last_lane = 256 * (n - 1);
        for (uint64_t j = 0; j < 3; j++)
            fusion_k[n][j] = fold_constant(8 * ((2 - j) * region + last_lane) + 63);
    }
}

AVX512_TARGET static uint32_t crc32c_fusion(uint32_t crc, const uint8_t *p, size_t len)
{
    if (len < FUSION_MIN_BYTES)
        return crc32c_avx512(crc, p, len);
    const __m512i k2048 = broadcast_pair(fold_k.k2048);
    uint64_t s1 = ~crc;
    for (;;) {
        size_t n = (len - 63) / FUSION_STEP;
        if (n > FUSION_MAX_STEPS)
            n = FUSION_MAX_STEPS;
        const size_t region = 8 * FUSION_Q * n;
        const uint8_t *start = p;
        const size_t head = (size_t)(-(uintptr_t)(p + 3 * region)) & 63;
        s1 = crc32_short(s1, p, head & 7);
        p += head & 7;
        for (size_t i = head >> 3; i; i--, p += 8)
            s1 = _mm_crc32_u64(s1, load_le64(p));
        const uint8_t *ps = p, *pv = p + 3 * region;
        __m512i x0 = _mm512_load_si512(pv);
        __m512i x1 = _mm512_load_si512(pv + 64);
        __m512i x2 = _mm512_load_si512(pv + 128);
        __m512i x3 = _mm512_load_si512(pv + 192);
        uint64_t s2 = 0, s3 = 0;
        for (const uint8_t *vend = pv + 256 * n;;) {
            for (int q = 0; q < FUSION_Q; q++) {
                s1 = _mm_crc32_u64(s1, load_le64(ps + 8 * q));
                s2 = _mm_crc32_u64(s2, load_le64(ps + region + 8 * q));
                s3 = _mm_crc32_u64(s3, load_le64(ps + 2 * region + 8 * q));
            }
            ps += 8 * FUSION_Q;
            pv += 256;
            if (pv == vend)
                break;
            x0 = fold512(x0, k2048, _mm512_load_si512(pv));
            x1 = fold512(x1, k2048, _mm512_load_si512(pv + 64));
            x2 = fold512(x2, k2048, _mm512_load_si512(pv + 128));
            x3 = fold512(x3, k2048, _mm512_load_si512(pv + 192));
        }
        __m256i v = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_set_epi64x((long long)s2, (long long)s1)),
            _mm_cvtsi64_si128((long long)s3), 1);
        __m256i k = _mm256_load_si256((const __m256i *)fusion_k[n]);
        __m256i t = _mm256_xor_si256(_mm256_clmulepi64_epi128(v, k, 0x00),
                                     _mm256_clmulepi64_epi128(v, k, 0x11));
        __m128i u = _mm_xor_si128(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(u));
        len -= (size_t)(pv - start);
        p = pv;
        if (len < FUSION_MIN_BYTES)
            return ~fold_finish(x0, x1, x2, x3, p, len);
        s1 = fold_finish(x0, x1, x2, x3, p, 0);
    }
}
#endif /* __x86_64__ */

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);

/* Every CRC-32C code this CPU can run, portable first; the last one is used. */
static struct {
    const char *name;
    crc_fn fn;
} crc_codes[4];
static int n_crc_codes;
static crc_fn crc32c_best;

static void crc_init(void)
{
    crc_table_init();
    crc_codes[n_crc_codes].name = "table";
    crc_codes[n_crc_codes++].fn = crc32c_table;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        crc_zeros_tables(crc_long_shift, CRC_LONG);
        crc_zeros_tables(crc_short_shift, CRC_SHORT);
        crc_codes[n_crc_codes].name = "sse4.2";
        crc_codes[n_crc_codes++].fn = crc32c_sse42;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("vpclmulqdq") &&
            __builtin_cpu_supports("pclmul")) {
            fold_pair(fold_k.k128, 128);
            fold_pair(fold_k.k512, 512);
            fold_pair(fold_k.k1024, 1024);
            fold_pair(fold_k.k1536, 1536);
            fold_pair(fold_k.k2048, 2048);
            fold_pair(fold_k.lanes, 384);
            fold_pair(fold_k.lanes + 2, 256);
            fold_pair(fold_k.lanes + 4, 128);
            crc_codes[n_crc_codes].name = "avx512-vpclmulqdq";
            crc_codes[n_crc_codes++].fn = crc32c_avx512;
            fusion_init();
            crc_codes[n_crc_codes].name = "avx512-fusion";
            crc_codes[n_crc_codes++].fn = crc32c_fusion;
        }
    }
#endif
    crc32c_best = crc_codes[n_crc_codes - 1].fn;
}

/* ------------------------------------------------------------------------------------ */
/* Argument helpers shared by all functions                                             */

enum { INT_OK = 0, INT_NOT_INT = 1, INT_OUT_OF_RANGE = 2, INT_ERROR = -1 };

/* Classifies v as the twin's _check_int does; the caller words the exception. */
static int parse_int(PyObject *v, long long low, long long high, long long *out)
{
    int overflow;
    long long x;
    if (!PyLong_Check(v))
        return INT_NOT_INT;
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return INT_ERROR;
    if (overflow || x < low || x > high)
        return INT_OUT_OF_RANGE;
    *out = x;
    return INT_OK;
}

/* The twin's _check_int(value, name, low, high, kind) for a plain argument name. */
static int check_arg(PyObject *v, const char *name, long long low, long long high,
                     const char *kind, long long *out)
{
    switch (parse_int(v, low, high, out)) {
    case INT_OK:
        return 0;
    case INT_NOT_INT:
        PyErr_Format(PyExc_TypeError, "%s must be int", name);
        return -1;
    case INT_OUT_OF_RANGE:
        PyErr_Format(PyExc_ValueError, "%s %S out of %s range", name, v, kind);
        return -1;
    default:
        return -1;
    }
}

static int get_byte_buffer(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        PyErr_SetString(PyExc_TypeError, "buf must be a contiguous bytes-like object");
        return -1;
    }
    return 0;
}

static inline uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t load_be64(const uint8_t *p)
{
    return ((uint64_t)load_be32(p) << 32) | load_be32(p + 4);
}

/* ------------------------------------------------------------------------------------ */
/* scan_batches                                                                         */

typedef struct {
    int64_t base_offset;
    int32_t last_offset_delta;
    int64_t max_timestamp;
    Py_ssize_t position;
    Py_ssize_t size;
} batch_info;

enum {
    SCAN_OK = 0,
    SCAN_ERR_SHORT_HEADER,
    SCAN_ERR_LENGTH,
    SCAN_ERR_SHORT_BATCH,
    SCAN_ERR_MAGIC,
    SCAN_ERR_CRC,
    SCAN_ERR_NOMEM,
};

typedef struct {
    batch_info *items;
    Py_ssize_t count, capacity;
    Py_ssize_t pos; /* valid_end, and the failing batch's position */
    int error;
    Py_ssize_t avail;
    int64_t size;
    int32_t length;
    int magic;
    uint32_t stored, computed;
} scan_state;

/* Pure C, no Python API: runs with or without the GIL. */
static void scan_region(const uint8_t *p, Py_ssize_t start, Py_ssize_t end, int64_t max_length,
                        scan_state *st)
{
    Py_ssize_t pos = start;
    st->error = SCAN_OK;
    while (pos < end) {
        Py_ssize_t avail = end - pos;
        const uint8_t *b = p + pos;
        st->avail = avail;
        if (avail < LOG_OVERHEAD) {
            st->error = SCAN_ERR_SHORT_HEADER;
            break;
        }
        int32_t length = (int32_t)load_be32(b + 8);
        st->length = length;
        if (length < MIN_BATCH_LENGTH || length > max_length) {
            st->error = SCAN_ERR_LENGTH;
            break;
        }
        Py_ssize_t size = LOG_OVERHEAD + (Py_ssize_t)length;
        st->size = size;
        if (avail < size) {
            st->error = SCAN_ERR_SHORT_BATCH;
            break;
        }
        st->magic = (int8_t)b[MAGIC_POS];
        if (st->magic != 2) {
            st->error = SCAN_ERR_MAGIC;
            break;
        }
        st->stored = load_be32(b + CRC_POS);
        st->computed = crc32c_best(0, b + ATTRIBUTES_POS, (size_t)(size - ATTRIBUTES_POS));
        if (st->stored != st->computed) {
            st->error = SCAN_ERR_CRC;
            break;
        }
        if (st->count == st->capacity) {
            Py_ssize_t cap = st->capacity ? st->capacity * 2 : 64;
            batch_info *items = PyMem_RawRealloc(st->items, (size_t)cap * sizeof(batch_info));
            if (!items) {
                st->error = SCAN_ERR_NOMEM;
                break;
            }
            st->items = items;
            st->capacity = cap;
        }
        batch_info *bi = &st->items[st->count++];
        bi->base_offset = (int64_t)load_be64(b);
        bi->last_offset_delta = (int32_t)load_be32(b + LAST_OFFSET_DELTA_POS);
        bi->max_timestamp = (int64_t)load_be64(b + MAX_TIMESTAMP_POS);
        bi->position = pos;
        bi->size = size;
        pos += size;
    }
    st->pos = pos;
}

static PyObject *scan_error_tuple(const scan_state *st, int64_t max_length)
{
    char msg[200];
    int code;
    long long pos = (long long)st->pos;
    switch (st->error) {
    case SCAN_ERR_SHORT_HEADER:
        code = SCAN_TRUNCATED;
        snprintf(msg, sizeof(msg), "truncated batch header at position %lld: %lld of %d bytes",
                 pos, (long long)st->avail, LOG_OVERHEAD);
        break;
    case SCAN_ERR_LENGTH:
        code = SCAN_BAD_LENGTH;
        snprintf(msg, sizeof(msg), "bad batch length %d at position %lld: must be %d..%lld",
                 (int)st->length, pos, MIN_BATCH_LENGTH, (long long)max_length);
        break;
    case SCAN_ERR_SHORT_BATCH:
        code = SCAN_TRUNCATED;
        snprintf(msg, sizeof(msg), "truncated batch at position %lld: %lld of %lld bytes", pos,
                 (long long)st->avail, (long long)st->size);
        break;
    case SCAN_ERR_MAGIC:
        code = SCAN_BAD_MAGIC;
        snprintf(msg, sizeof(msg), "bad magic %d at position %lld: expected 2", st->magic, pos);
        break;
    default:
        code = SCAN_BAD_CRC;
        snprintf(msg, sizeof(msg),
                 "CRC-32C mismatch at position %lld: stored 0x%08x, computed 0x%08x", pos,
                 (unsigned)st->stored, (unsigned)st->computed);
        break;
    }
    return Py_BuildValue("(is)", code, msg);
}

static PyObject *scan_result(const scan_state *st, int64_t max_length)
{
    PyObject *list = PyList_New(st->count);
    PyObject *error, *prev_t = NULL;
    if (!list)
        return NULL;
    for (Py_ssize_t i = 0; i < st->count; i++) {
        const batch_info *bi = &st->items[i], *prev = &st->items[i > 0 ? i - 1 : 0];
        PyObject *t = PyTuple_New(5);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
        /* Batches in a row often share a record count, size or timestamp: share the int. */
        PyObject *fields[5] = {
            PyLong_FromLongLong(bi->base_offset),
            prev_t && bi->last_offset_delta == prev->last_offset_delta
                ? Py_NewRef(PyTuple_GET_ITEM(prev_t, 1))
                : PyLong_FromLong(bi->last_offset_delta),
            prev_t && bi->max_timestamp == prev->max_timestamp
                ? Py_NewRef(PyTuple_GET_ITEM(prev_t, 2))
                : PyLong_FromLongLong(bi->max_timestamp),
            PyLong_FromSsize_t(bi->position),
            prev_t && bi->size == prev->size ? Py_NewRef(PyTuple_GET_ITEM(prev_t, 4))
                                             : PyLong_FromSsize_t(bi->size),
        };
        for (int k = 0; k < 5; k++) {
            if (!fields[k]) {
                for (int j = k + 1; j < 5; j++)
                    Py_XDECREF(fields[j]);
                Py_DECREF(list); /* frees t and the fields already stored in it */
                return NULL;
            }
            PyTuple_SET_ITEM(t, k, fields[k]);
        }
        /* Ints cannot form cycles: keep thousands of these tuples out of the GC's way. */
        PyObject_GC_UnTrack(t);
        prev_t = t;
    }
    if (st->error == SCAN_OK) {
        error = Py_NewRef(Py_None);
    } else {
        error = scan_error_tuple(st, max_length);
        if (!error) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return Py_BuildValue("(NnN)", list, st->pos, error);
}

static PyObject *native_scan_batches(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"buf", "start", "end", "max_batch_bytes", NULL};
    PyObject *buf_obj, *start_obj = NULL, *end_obj = Py_None, *max_obj = Py_None;
    long long start = 0, end, max_length = INT32_MAX;
    Py_buffer view;
    scan_state st;
    PyObject *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OOO:scan_batches", kwlist, &buf_obj,
                                     &start_obj, &end_obj, &max_obj))
        return NULL;
    if (get_byte_buffer(buf_obj, &view) < 0)
        return NULL;
    end = (long long)view.len;
    if (start_obj && check_arg(start_obj, "start", INT64_MIN, INT64_MAX, "int64", &start) < 0)
        goto done;
    if (end_obj != Py_None && check_arg(end_obj, "end", INT64_MIN, INT64_MAX, "int64", &end) < 0)
        goto done;
    if (!(0 <= start && start <= end && end <= (long long)view.len)) {
        PyErr_Format(PyExc_ValueError, "bad range [%lld, %lld) for a buffer of %zd bytes", start,
                     end, view.len);
        goto done;
    }
    if (max_obj != Py_None &&
        check_arg(max_obj, "max_batch_bytes", 0, INT64_MAX, "non-negative int64", &max_length) <
            0)
        goto done;

    memset(&st, 0, sizeof(st));
    if (end - start >= SCAN_NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        scan_region(view.buf, (Py_ssize_t)start, (Py_ssize_t)end, max_length, &st);
        Py_END_ALLOW_THREADS
    } else {
        scan_region(view.buf, (Py_ssize_t)start, (Py_ssize_t)end, max_length, &st);
    }
    if (st.error == SCAN_ERR_NOMEM)
        PyErr_NoMemory();
    else
        result = scan_result(&st, max_length);
    PyMem_RawFree(st.items);
done:
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------ */
/* sendfile_slice                                                                       */

static PyObject *native_sendfile_slice(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"sock_fd", "file_fd", "offset", "count", NULL};
    PyObject *sock_obj, *file_obj, *offset_obj, *count_obj;
    long long sock_fd, file_fd, offset, count;
    long long sent = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:sendfile_slice", kwlist, &sock_obj,
                                     &file_obj, &offset_obj, &count_obj))
        return NULL;
    if (check_arg(sock_obj, "sock_fd", 0, INT32_MAX, "fd", &sock_fd) < 0 ||
        check_arg(file_obj, "file_fd", 0, INT32_MAX, "fd", &file_fd) < 0 ||
        check_arg(offset_obj, "offset", 0, INT64_MAX, "non-negative int64", &offset) < 0 ||
        check_arg(count_obj, "count", 0, INT64_MAX, "non-negative int64", &count) < 0)
        return NULL;
    if (count > INT64_MAX - offset) {
        PyObject *end = PyNumber_Add(offset_obj, count_obj);
        if (end) {
            PyErr_Format(PyExc_ValueError, "slice end %S out of int64 range", end);
            Py_DECREF(end);
        }
        return NULL;
    }
#if defined(__linux__)
    while (sent < count) {
        off_t off = (off_t)(offset + sent);
        ssize_t n;
        int err;
        Py_BEGIN_ALLOW_THREADS
        n = sendfile((int)sock_fd, (int)file_fd, &off, (size_t)(count - sent));
        err = errno;
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (err == EINTR) {
                /* As os.sendfile does (PEP 475): run signal handlers, then retry. */
                if (PyErr_CheckSignals() < 0)
                    return NULL;
                continue;
            }
            if (err == EAGAIN || err == EWOULDBLOCK)
                break;
            errno = err;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (n == 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "file ends at offset %lld, inside the slice [%lld, %lld)",
                     offset + sent, offset, offset + count);
            PyObject *exc_args = Py_BuildValue("(is)", ENODATA, msg);
            if (exc_args) {
                PyErr_SetObject(PyExc_OSError, exc_args);
                Py_DECREF(exc_args);
            }
            return NULL;
        }
        sent += n;
    }
    return PyLong_FromLongLong(sent);
#else
    PyErr_SetString(PyExc_OSError, "sendfile_slice needs Linux sendfile(2)");
    return NULL;
#endif
}

/* ------------------------------------------------------------------------------------ */
/* encode_records                                                                       */

typedef struct {
    char *data;
    size_t len, cap;
} outbuf;

static int out_reserve(outbuf *o, size_t extra)
{
    if (o->cap - o->len >= extra)
        return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(o->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = data;
    o->cap = cap;
    return 0;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline size_t varint_size(uint64_t u)
{
    size_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

/* Caller has reserved 10 bytes. */
static inline void put_varint(outbuf *o, int64_t v)
{
    uint64_t u = zigzag(v);
    unsigned char *p = (unsigned char *)o->data + o->len;
    while (u >= 0x80) {
        *p++ = (unsigned char)((u & 0x7f) | 0x80);
        u >>= 7;
    }
    *p++ = (unsigned char)u;
    o->len = (size_t)(p - (unsigned char *)o->data);
}

/* A key or value: bytes-like or None. has == 0 means None. */
typedef struct {
    Py_buffer view;
    int has;
} blob;

/* Fills b from value; on error raises "<prefix>: <field> ..." like the twin's _blob. */
static int blob_get(PyObject *value, blob *b, const char *prefix, const char *field)
{
    b->has = 0;
    if (value == Py_None)
        return 0;
    if (PyObject_GetBuffer(value, &b->view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be bytes-like or None", prefix, field);
        return -1;
    }
    if (b->view.len > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: %s of %zd bytes is too long", prefix, field,
                     b->view.len);
        PyBuffer_Release(&b->view);
        return -1;
    }
    b->has = 1;
    return 0;
}

static void blob_release(blob *b)
{
    if (b->has)
        PyBuffer_Release(&b->view);
    b->has = 0;
}

static int blob_put(outbuf *o, const char *data, Py_ssize_t len, int has)
{
    if (out_reserve(o, 5 + (size_t)(has ? len : 0)) < 0)
        return -1;
    if (!has) {
        put_varint(o, -1);
        return 0;
    }
    put_varint(o, len);
    memcpy(o->data + o->len, data, (size_t)len);
    o->len += (size_t)len;
    return 0;
}

static int encode_header(outbuf *o, PyObject *header, const char *hprefix)
{
    PyObject *hkey, *hvalue;
    const char *key;
    Py_ssize_t key_len;
    blob v;
    int rc;

    if (!(PyTuple_Check(header) || PyList_Check(header)) || Py_SIZE(header) != 2) {
        PyErr_Format(PyExc_TypeError, "%s: expected a (key, value) tuple", hprefix);
        return -1;
    }
    hkey = PySequence_Fast_GET_ITEM(header, 0);
    hvalue = PySequence_Fast_GET_ITEM(header, 1);
    if (!PyUnicode_Check(hkey)) {
        PyErr_Format(PyExc_TypeError, "%s: key must be str", hprefix);
        return -1;
    }
    key = PyUnicode_AsUTF8AndSize(hkey, &key_len);
    if (!key) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: key is not valid UTF-8", hprefix);
        return -1;
    }
    if (key_len > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: key of %zd bytes is too long", hprefix, key_len);
        return -1;
    }
    if (blob_get(hvalue, &v, hprefix, "value") < 0)
        return -1;
    rc = blob_put(o, key, key_len, 1);
    if (rc == 0)
        rc = blob_put(o, v.has ? v.view.buf : NULL, v.has ? v.view.len : 0, v.has);
    blob_release(&v);
    return rc;
}

static int encode_record(outbuf *o, PyObject *rec, Py_ssize_t i)
{
    char prefix[64], hprefix[96];
    PyObject *offset_obj, *ts_obj, *headers;
    long long offset_delta, ts_delta;
    blob key, value;
    size_t rec_start, body_start, body_len, len_size;
    int rc = -1;

    snprintf(prefix, sizeof(prefix), "record %zd", i);
    if (!(PyTuple_Check(rec) || PyList_Check(rec)) || Py_SIZE(rec) != 5) {
        PyErr_Format(PyExc_TypeError,
                     "%s: expected an (offset_delta, timestamp_delta, key, value, headers) tuple",
                     prefix);
        return -1;
    }
    offset_obj = PySequence_Fast_GET_ITEM(rec, 0);
    ts_obj = PySequence_Fast_GET_ITEM(rec, 1);
    switch (parse_int(offset_obj, INT32_MIN, INT32_MAX, &offset_delta)) {
    case INT_OK:
        break;
    case INT_NOT_INT:
        PyErr_Format(PyExc_TypeError, "%s: offset_delta must be int", prefix);
        return -1;
    case INT_OUT_OF_RANGE:
        PyErr_Format(PyExc_ValueError, "%s: offset_delta %S out of int32 range", prefix,
                     offset_obj);
        return -1;
    default:
        return -1;
    }
    switch (parse_int(ts_obj, INT64_MIN, INT64_MAX, &ts_delta)) {
    case INT_OK:
        break;
    case INT_NOT_INT:
        PyErr_Format(PyExc_TypeError, "%s: timestamp_delta must be int", prefix);
        return -1;
    case INT_OUT_OF_RANGE:
        PyErr_Format(PyExc_ValueError, "%s: timestamp_delta %S out of int64 range", prefix,
                     ts_obj);
        return -1;
    default:
        return -1;
    }
    if (blob_get(PySequence_Fast_GET_ITEM(rec, 2), &key, prefix, "key") < 0)
        return -1;
    if (blob_get(PySequence_Fast_GET_ITEM(rec, 3), &value, prefix, "value") < 0) {
        blob_release(&key);
        return -1;
    }
    headers = PySequence_Fast_GET_ITEM(rec, 4);
    if (!(PyTuple_Check(headers) || PyList_Check(headers))) {
        PyErr_Format(PyExc_TypeError, "%s: headers must be a list or tuple", prefix);
        goto done;
    }

    /* The body length prefixes the body but is known only after it; leave room for its
       largest varint and close the gap afterwards. */
    rec_start = o->len;
    if (out_reserve(o, 5 + 1 + 10 + 5) < 0)
        goto done;
    body_start = rec_start + 5;
    o->len = body_start;
    o->data[o->len++] = 0; /* attributes: unused in v2 records */
    put_varint(o, ts_delta);
    put_varint(o, offset_delta);
    if (blob_put(o, key.has ? key.view.buf : NULL, key.has ? key.view.len : 0, key.has) < 0 ||
        blob_put(o, value.has ? value.view.buf : NULL, value.has ? value.view.len : 0,
                 value.has) < 0)
        goto done;
    Py_ssize_t n_headers = Py_SIZE(headers);
    if (out_reserve(o, 5) < 0)
        goto done;
    put_varint(o, n_headers);
    for (Py_ssize_t j = 0; j < n_headers; j++) {
        snprintf(hprefix, sizeof(hprefix), "%s header %zd", prefix, j);
        if (encode_header(o, PySequence_Fast_GET_ITEM(headers, j), hprefix) < 0)
            goto done;
    }
    body_len = o->len - body_start;
    if (body_len > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: encoded record of %zu bytes is too long", prefix,
                     body_len);
        goto done;
    }
    len_size = varint_size(zigzag((int64_t)body_len));
    memmove(o->data + rec_start + len_size, o->data + body_start, body_len);
    o->len = rec_start;
    put_varint(o, (int64_t)body_len);
    o->len += body_len;
    rc = 0;
done:
    blob_release(&key);
    blob_release(&value);
    return rc;
}

static PyObject *native_encode_records(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"records", NULL};
    PyObject *records, *seq;
    outbuf o = {NULL, 0, 0};
    PyObject *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:encode_records", kwlist, &records))
        return NULL;
    seq = PySequence_Fast(records, "records must be iterable");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (out_reserve(&o, (size_t)n * 8 + 1) < 0) /* 8 bytes: a near-empty record */
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (encode_record(&o, PySequence_Fast_GET_ITEM(seq, i), i) < 0)
            goto done;
    }
    result = PyBytes_FromStringAndSize(o.data, (Py_ssize_t)o.len);
done:
    PyMem_Free(o.data);
    Py_DECREF(seq);
    return result;
}

/* ------------------------------------------------------------------------------------ */
/* decode_records                                                                       */

typedef struct {
    const uint8_t *buf;
    Py_ssize_t pos, limit;
    Py_ssize_t index, start; /* the record being read, for messages */
} reader;

static int read_varint(reader *r, const char *field, int max_bytes, int bits, int64_t *out)
{
    uint64_t value = 0;
    int shift = 0;
    for (int k = 0; k < max_bytes; k++) {
        if (r->pos >= r->limit) {
            PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): %s varint is truncated",
                         r->index, r->start, field);
            return -1;
        }
        uint8_t b = r->buf[r->pos++];
        value |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            if (bits == 32)
                value &= 0xffffffffu; /* Kafka drops the bits past the type's width */
            *out = (int64_t)((value >> 1) ^ (0 - (value & 1)));
            return 0;
        }
        shift += 7;
    }
    PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): %s varint is longer than %d bytes",
                 r->index, r->start, field, max_bytes);
    return -1;
}

/* A key or value: NULL-with-no-error for a negative length (Kafka's null). */
static PyObject *read_blob(reader *r, const char *field, int *is_null)
{
    char length_field[32];
    int64_t n;
    snprintf(length_field, sizeof(length_field), "%s length", field);
    *is_null = 0;
    if (read_varint(r, length_field, 5, 32, &n) < 0)
        return NULL;
    if (n < 0) {
        *is_null = 1;
        return NULL;
    }
    if (n > r->limit - r->pos) {
        PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): %s of %lld bytes overruns the record",
                     r->index, r->start, field, (long long)n);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += (Py_ssize_t)n;
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
}

/* bytes or None as a new reference; NULL on error. */
static PyObject *read_bytes_or_none(reader *r, const char *field)
{
    int is_null;
    PyObject *v = read_blob(r, field, &is_null);
    if (is_null)
        return Py_NewRef(Py_None);
    return v;
}

static PyObject *read_headers(reader *r)
{
    int64_t count;
    PyObject *headers;
    if (read_varint(r, "header count", 5, 32, &count) < 0)
        return NULL;
    if (count < 0) {
        PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): negative header count %lld",
                     r->index, r->start, (long long)count);
        return NULL;
    }
    headers = PyList_New(0);
    if (!headers)
        return NULL;
    for (int64_t j = 0; j < count; j++) {
        int64_t n;
        PyObject *key, *value, *pair;
        if (read_varint(r, "header key length", 5, 32, &n) < 0)
            goto fail;
        if (n < 0) {
            PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): negative header key length",
                         r->index, r->start);
            goto fail;
        }
        if (n > r->limit - r->pos) {
            PyErr_Format(PyExc_ValueError,
                         "record %zd (byte %zd): header key of %lld bytes overruns the record",
                         r->index, r->start, (long long)n);
            goto fail;
        }
        key = PyUnicode_DecodeUTF8((const char *)r->buf + r->pos, (Py_ssize_t)n, "strict");
        if (!key) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                goto fail;
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): header key is not valid UTF-8",
                         r->index, r->start);
            goto fail;
        }
        r->pos += (Py_ssize_t)n;
        value = read_bytes_or_none(r, "header value");
        if (!value) {
            Py_DECREF(key);
            goto fail;
        }
        pair = PyTuple_Pack(2, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (!pair)
            goto fail;
        if (PyList_Append(headers, pair) < 0) {
            Py_DECREF(pair);
            goto fail;
        }
        Py_DECREF(pair);
    }
    return headers;
fail:
    Py_DECREF(headers);
    return NULL;
}

/* base + delta as the twin computes it, or a ValueError naming the overflow. */
static PyObject *absolute(reader *r, const char *what, int64_t base, int64_t delta)
{
    int64_t sum;
    if (!__builtin_add_overflow(base, delta, &sum))
        return PyLong_FromLongLong(sum);
    PyObject *b = PyLong_FromLongLong(base), *d = PyLong_FromLongLong(delta), *s = NULL;
    if (b && d)
        s = PyNumber_Add(b, d);
    if (s)
        PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): %s %S overflows int64", r->index,
                     r->start, what, s);
    Py_XDECREF(b);
    Py_XDECREF(d);
    Py_XDECREF(s);
    return NULL;
}

static PyObject *decode_one(reader *r, Py_ssize_t total, int64_t base_offset,
                            int64_t base_timestamp)
{
    int64_t length, ts_delta, offset_delta;
    PyObject *offset = NULL, *timestamp = NULL, *key = NULL, *value = NULL, *headers = NULL;
    PyObject *rec = NULL;

    r->limit = total;
    if (read_varint(r, "length", 5, 32, &length) < 0)
        return NULL;
    if (length < 0) {
        PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): negative length %lld", r->index,
                     r->start, (long long)length);
        return NULL;
    }
    if (length > total - r->pos) {
        PyErr_Format(PyExc_ValueError,
                     "record %zd (byte %zd): length %lld exceeds the %zd bytes left", r->index,
                     r->start, (long long)length, total - r->pos);
        return NULL;
    }
    r->limit = r->pos + (Py_ssize_t)length;
    if (r->pos >= r->limit) {
        PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): attributes is truncated",
                     r->index, r->start);
        return NULL;
    }
    r->pos++; /* attributes: unused in v2 records */
    if (read_varint(r, "timestamp delta", 10, 64, &ts_delta) < 0 ||
        read_varint(r, "offset delta", 5, 32, &offset_delta) < 0)
        return NULL;
    timestamp = absolute(r, "timestamp", base_timestamp, ts_delta);
    if (!timestamp)
        return NULL;
    offset = absolute(r, "offset", base_offset, offset_delta);
    if (!offset)
        goto done;
    key = read_bytes_or_none(r, "key");
    if (!key)
        goto done;
    value = read_bytes_or_none(r, "value");
    if (!value)
        goto done;
    headers = read_headers(r);
    if (!headers)
        goto done;
    if (r->pos != r->limit) {
        PyErr_Format(PyExc_ValueError, "record %zd (byte %zd): %zd unread bytes at the end of the record",
                     r->index, r->start, r->limit - r->pos);
        goto done;
    }
    rec = PyTuple_Pack(5, offset, timestamp, key, value, headers);
done:
    Py_XDECREF(offset);
    Py_XDECREF(timestamp);
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(headers);
    return rec;
}

static PyObject *native_decode_records(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"buf", "count", "base_offset", "base_timestamp", NULL};
    PyObject *buf_obj, *count_obj, *offset_obj, *ts_obj;
    long long count, base_offset, base_timestamp;
    Py_buffer view;
    PyObject *records = NULL;
    reader r;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:decode_records", kwlist, &buf_obj,
                                     &count_obj, &offset_obj, &ts_obj))
        return NULL;
    if (get_byte_buffer(buf_obj, &view) < 0)
        return NULL;
    if (check_arg(count_obj, "count", 0, INT64_MAX, "non-negative int64", &count) < 0 ||
        check_arg(offset_obj, "base_offset", INT64_MIN, INT64_MAX, "int64", &base_offset) < 0 ||
        check_arg(ts_obj, "base_timestamp", INT64_MIN, INT64_MAX, "int64", &base_timestamp) < 0)
        goto done;
    records = PyList_New(0);
    if (!records)
        goto done;
    r.buf = view.buf;
    r.pos = 0;
    for (long long i = 0; i < count; i++) {
        if (r.pos >= view.len) {
            PyErr_Format(PyExc_ValueError, "buffer ends after %lld of %lld records", i, count);
            goto fail;
        }
        r.index = (Py_ssize_t)i;
        r.start = r.pos;
        PyObject *rec = decode_one(&r, view.len, base_offset, base_timestamp);
        if (!rec)
            goto fail;
        if (PyList_Append(records, rec) < 0) {
            Py_DECREF(rec);
            goto fail;
        }
        Py_DECREF(rec);
    }
    if (r.pos != view.len) {
        PyErr_Format(PyExc_ValueError, "%zd trailing bytes after %lld records", view.len - r.pos,
                     count);
        goto fail;
    }
    goto done;
fail:
    Py_CLEAR(records);
done:
    PyBuffer_Release(&view);
    return records;
}

/* ------------------------------------------------------------------------------------ */
/* Test hook: every CRC code this CPU runs, so tests check each on any machine.        */

static PyObject *native_crc32c_all(PyObject *self, PyObject *args)
{
    PyObject *buf_obj, *result;
    unsigned int crc = 0;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "O|I:_crc32c_all", &buf_obj, &crc))
        return NULL;
    if (get_byte_buffer(buf_obj, &view) < 0)
        return NULL;
    result = PyDict_New();
    if (!result) {
        PyBuffer_Release(&view);
        return NULL;
    }
    for (int i = 0; i < n_crc_codes; i++) {
        PyObject *v = PyLong_FromUnsignedLong(crc_codes[i].fn(crc, view.buf, (size_t)view.len));
        if (!v || PyDict_SetItemString(result, crc_codes[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(result);
            break;
        }
        Py_DECREF(v);
    }
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------------------------ */

static PyMethodDef native_methods[] = {
    {"scan_batches", (PyCFunction)(void (*)(void))native_scan_batches,
     METH_VARARGS | METH_KEYWORDS,
     "scan_batches(buf, start=0, end=None, max_batch_bytes=None)\n--\n\n"
     "Walk v2 record batches; see klog.native."},
    {"sendfile_slice", (PyCFunction)(void (*)(void))native_sendfile_slice,
     METH_VARARGS | METH_KEYWORDS,
     "sendfile_slice(sock_fd, file_fd, offset, count)\n--\n\n"
     "sendfile(2) a file region to a non-blocking socket; see klog.native."},
    {"encode_records", (PyCFunction)(void (*)(void))native_encode_records,
     METH_VARARGS | METH_KEYWORDS,
     "encode_records(records)\n--\n\nEncode v2 records; see klog.native."},
    {"decode_records", (PyCFunction)(void (*)(void))native_decode_records,
     METH_VARARGS | METH_KEYWORDS,
     "decode_records(buf, count, base_offset, base_timestamp)\n--\n\n"
     "Decode v2 records; see klog.native."},
    {"_crc32c_all", native_crc32c_all, METH_VARARGS,
     "_crc32c_all(buf, crc=0)\n--\n\n"
     "{code name: CRC-32C of buf continuing from crc} for every CRC code this CPU runs "
     "(for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "klog._native",
    "C implementation of klog.native (twin: klog._native_py).", -1, native_methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m;
    crc_init();
    m = PyModule_Create(&native_module);
    if (!m)
        return NULL;
    if (PyModule_AddStringConstant(m, "IMPLEMENTATION", "c") < 0 ||
        PyModule_AddStringConstant(m, "CRC32C_CODE", crc_codes[n_crc_codes - 1].name) < 0 ||
        PyModule_AddIntConstant(m, "SCAN_TRUNCATED", SCAN_TRUNCATED) < 0 ||
        PyModule_AddIntConstant(m, "SCAN_BAD_LENGTH", SCAN_BAD_LENGTH) < 0 ||
        PyModule_AddIntConstant(m, "SCAN_BAD_MAGIC", SCAN_BAD_MAGIC) < 0 ||
        PyModule_AddIntConstant(m, "SCAN_BAD_CRC", SCAN_BAD_CRC) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
