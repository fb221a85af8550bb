/* cast (elementwise family, its own small program: one build per (source, result) type pair).
 * SRC and DST are the OpenCL C types (-D SRC=float -D DST=long; bool is uchar 0/1); TO_BOOL is
 * defined for bool results: nonzero (NaN included) is 1, as NumPy's astype(bool). Otherwise C's
 * conversion: floats to integers truncate toward zero, double to float and integers to floats round
 * to nearest even (NumPy's rules for values in range).
 * float16 is storage only (OpenCL C 1.2 without cl_khr_fp16): SRC_HALF reads half values with
 * vload_half (exact, as float), DST_HALF writes with vstore_half_rte (one rounding to nearest even,
 * from double where the source is double; integers go through float, exact below 2^24, and beyond
 * that float16 overflows to inf either way). */
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#ifdef SRC_HALF
#define LOAD(i) vload_half((i), x)
#define VAL float
#else
#define LOAD(i) x[i]
#define VAL SRC
#endif

__kernel void cast_k(__global const SRC* x, __global DST* y, const int n) {
    int i = get_global_id(0);
    if (i < n) {
        VAL v = LOAD(i);
#if defined(TO_BOOL)
        y[i] = (v != (VAL)0) ? 1 : 0;
#elif defined(DST_HALF)
#ifdef SRC_DOUBLE
        vstore_half_rte(v, i, y);
#else
        vstore_half_rte((float)v, i, y);
#endif
#else
        y[i] = (DST)v;
#endif
    }
}
