/* Kernels on values of any dtype: comparisons (uchar 0/1 results: NumPy's bool), where, and the
 * argmax / argmin of the reduce family. V is the value type (-D V=float, double, int, long or
 * uchar for bool), VFLOAT is defined for float V; T keeps common.cl's default (its helpers are
 * float-only), so these kernels build for integer and bool values too. */

#ifdef VFLOAT
#define VISNAN(v) isnan(v)
#else
#define VISNAN(v) 0
#endif

/* Three stride sets walked at once (where). */
#define STEP3(c) q = i % shape.c; i /= shape.c; *o0 += q * s0.c; *o1 += q * s1.c; *o2 += q * s2.c;
inline void strided_offset3(int i, int8 shape, int8 s0, int8 s1, int8 s2, int* o0, int* o1, int* o2) {
    int q;
    *o0 = 0; *o1 = 0; *o2 = 0;
    STEP3(s7) STEP3(s6) STEP3(s5) STEP3(s4) STEP3(s3) STEP3(s2) STEP3(s1) STEP3(s0)
}
#undef STEP3

#define COMPARE(name, expr)                                                 \
__kernel void name##_same(__global const V* a, __global const V* b, __global uchar* y, const int n) { \
    int i = get_global_id(0);                                               \
    if (i < n) { V u = a[i], v = b[i]; y[i] = (expr) ? 1 : 0; }             \
}                                                                           \
__kernel void name##_bcast(__global const V* a, __global const V* b, __global uchar* y, const int n, \
                           const int8 shape, const int8 sa, const int8 sb) { \
    int i = get_global_id(0);                                               \
    if (i < n) {                                                            \
        int oa, ob;                                                         \
        strided_offset2(i, shape, sa, sb, &oa, &ob);                        \
        V u = a[oa], v = b[ob]; y[i] = (expr) ? 1 : 0;                      \
    }                                                                       \
}

/* IEEE comparisons: every one but != is false with a NaN operand. */
COMPARE(equal_k, u == v)
COMPARE(not_equal_k, u != v)
COMPARE(less_k, u < v)
COMPARE(less_equal_k, u <= v)
COMPARE(greater_k, u > v)
COMPARE(greater_equal_k, u >= v)

__kernel void where_same(__global const uchar* c, __global const V* a, __global const V* b, __global V* y,
                         const int n) {
    int i = get_global_id(0);
    if (i < n) y[i] = c[i] ? a[i] : b[i];
}

__kernel void where_bcast(__global const uchar* c, __global const V* a, __global const V* b, __global V* y,
                          const int n, const int8 shape, const int8 sc, const int8 sa, const int8 sb) {
    int i = get_global_id(0);
    if (i < n) {
        int oc, oa, ob;
        strided_offset3(i, shape, sc, sa, sb, &oc, &oa, &ob);
        y[i] = c[oc] ? a[oa] : b[ob];
    }
}

/* argmax / argmin over the middle axis of a contiguous (outer, K, inner) view, one work-item per
 * output (outer * inner of them): the first extreme, or the first NaN (NumPy's rule). */
#define ARG(name, BETTER)                                                   \
__kernel void name(__global const V* x, __global long* y, const int K, const int inner, const int n) { \
    int i = get_global_id(0);                                               \
    if (i >= n) return;                                                     \
    const int o = i / inner, j = i % inner;                                 \
    __global const V* r = x + (size_t)o * K * inner + j;                    \
    V best = r[0];                                                          \
    long at = 0;                                                            \
    if (!VISNAN(best)) {                                                    \
        for (int k = 1; k < K; ++k) {                                       \
            V v = r[(size_t)k * inner];                                     \
            if (VISNAN(v)) { at = k; break; }                               \
            if (BETTER(v, best)) { best = v; at = k; }                      \
        }                                                                   \
    }                                                                       \
    y[i] = at;                                                              \
}
#define GT(a, b) ((a) > (b))
#define LT(a, b) ((a) < (b))
ARG(argmax_k, GT)
ARG(argmin_k, LT)

/* max / min of int and bool values (the reduce family's non-float path) over the rows of a contiguous
 * (rows, K) view, K >= 1: one work-group per row with a local tree reduction, or one work-item per
 * row for short rows (the *_seq variants). Each lane starts from the row's first element, so no
 * identity of V is needed; there is no NaN to propagate. */
#define VMAX2(a, b) ((a) > (b) ? (a) : (b))
#define VMIN2(a, b) ((a) < (b) ? (a) : (b))
#define EXTREMUM_VALUES_ROWS(name, PICK)                                    \
__kernel void name(__global const V* x, __global V* y, const int K, __local V* scratch) { \
    const int row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0); \
    __global const V* r = x + (size_t)row * K;                              \
    V acc = r[0];                                                           \
    for (int k = lid; k < K; k += L) acc = PICK(r[k], acc);                 \
    scratch[lid] = acc;                                                     \
    LOCAL_REDUCE(scratch, lid, L, PICK)                                     \
    if (lid == 0) y[row] = scratch[0];                                      \
}                                                                           \
__kernel void name##_seq(__global const V* x, __global V* y, const int K, const int rows) { \
    const int row = get_global_id(0);                                       \
    if (row >= rows) return;                                                \
    __global const V* r = x + (size_t)row * K;                              \
    V acc = r[0];                                                           \
    for (int k = 1; k < K; ++k) acc = PICK(r[k], acc);                      \
    y[row] = acc;                                                           \
}
EXTREMUM_VALUES_ROWS(max_values_rows, VMAX2)
EXTREMUM_VALUES_ROWS(min_values_rows, VMIN2)
