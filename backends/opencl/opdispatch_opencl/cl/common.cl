/* Shared prelude of every kernel family. T is the element type (-D T=float or -D T=double). */
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#ifndef T
#define T float
#endif

/* Offset of linear index i of a row-major shape (8 dims, padded in front with 1) under strides. */
#define STEP(c) q = i % shape.c; i /= shape.c; off += q * st.c;
inline int strided_offset(int i, int8 shape, int8 st) {
    int off = 0, q;
    STEP(s7) STEP(s6) STEP(s5) STEP(s4) STEP(s3) STEP(s2) STEP(s1) STEP(s0)
    return off;
}
#undef STEP

/* Two stride sets walked at once (broadcasting binary ops). */
#define STEP2(c) q = i % shape.c; i /= shape.c; *oa += q * sa.c; *ob += q * sb.c;
inline void strided_offset2(int i, int8 shape, int8 sa, int8 sb, int* oa, int* ob) {
    int q;
    *oa = 0; *ob = 0;
    STEP2(s7) STEP2(s6) STEP2(s5) STEP2(s4) STEP2(s3) STEP2(s2) STEP2(s1) STEP2(s0)
}
#undef STEP2

/* NaN-propagating maximum, like numpy.maximum. */
inline T nanmax2(T a, T b) { return (isnan(a) || a > b) ? a : b; }

/* Tree reduction of scratch[0..L) (L a power of two) in local memory; result in scratch[0]. */
#define LOCAL_REDUCE(scratch, lid, L, COMBINE)                         \
    for (int _s = (L) >> 1; _s > 0; _s >>= 1) {                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                   \
        if ((lid) < _s) scratch[lid] = COMBINE(scratch[lid], scratch[(lid) + _s]); \
    }                                                                   \
    barrier(CLK_LOCAL_MEM_FENCE);
#define ADD2(a, b) ((a) + (b))

/* Row kernels over a contiguous (rows, K) array x: one work-group per row. */
#define ROW_SETUP                                               \
    const int row = get_group_id(0), lid = get_local_id(0);     \
    const int L = get_local_size(0);                            \
    __global const T* r = x + (size_t)row * K;

/* Row max then sum of exp(x - max), both left in the work-group's registers as (m, s). */
#define ROW_MAX_SUMEXP                                                  \
    T m = -INFINITY;                                                    \
    for (int k = lid; k < K; k += L) m = nanmax2(r[k], m);              \
    scratch[lid] = m;                                                   \
    LOCAL_REDUCE(scratch, lid, L, nanmax2)                              \
    m = scratch[0];                                                     \
    barrier(CLK_LOCAL_MEM_FENCE);                                       \
    T s = (T)0;                                                         \
    for (int k = lid; k < K; k += L) s += exp(r[k] - m);                \
    scratch[lid] = s;                                                   \
    LOCAL_REDUCE(scratch, lid, L, ADD2)                                 \
    s = scratch[0];
