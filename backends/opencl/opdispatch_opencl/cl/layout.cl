/* Layout kernels on values of any dtype: strided copies (transpose, broadcast_to, slice), strided stores
 * (concat), padding, gather and scatter_add. V is the value type (-D V=float, double, int, long or uchar
 * for bool, NumPy's one-byte bool); T keeps common.cl's default (its helpers are float-only), so these
 * kernels build for integer and bool values too (the compare family's approach). */
#ifndef V
#define V float
#endif
/* IDX_T is the index type of gather (-D IDX_T=int or long). */
#ifndef IDX_T
#define IDX_T long
#endif

/* y[y_off + i] = x[offset(i)]: transpose, broadcast_to. */
__kernel void copy_k(__global const V* x, __global V* y, const int n, const int8 shape, const int8 st,
                     const int y_off) {
    int i = get_global_id(0);
    if (i < n) y[y_off + i] = x[strided_offset(i, shape, st)];
}

/* The same, one work-item per run of the innermost dimension (shape.s7 elements, stride st.s7):
 * the index arithmetic is paid once per run instead of once per element. */
__kernel void copy_rows_k(__global const V* x, __global V* y, const int rows, const int8 shape,
                          const int8 st, const int y_off) {
    const int row = get_global_id(0);
    if (row >= rows) return;
    const int inner = shape.s7, step = st.s7;
    __global const V* src = x + strided_offset(row * inner, shape, st);
    __global V* dst = y + y_off + row * inner;
    for (int k = 0; k < inner; ++k) dst[k] = src[k * step];
}

/* y[i] = x[x_off + offset(i)]: slices (x_off is the first element read; strides may be negative). */
__kernel void copy_from_k(__global const V* x, __global V* y, const int n, const int8 shape, const int8 st,
                          const int x_off) {
    int i = get_global_id(0);
    if (i < n) y[i] = x[x_off + strided_offset(i, shape, st)];
}

/* y[y_off + offset(i)] = x[i]: a part written into its place in a larger array (concat). */
__kernel void store_k(__global const V* x, __global V* y, const int n, const int8 shape, const int8 st,
                      const int y_off) {
    int i = get_global_id(0);
    if (i < n) y[y_off + strided_offset(i, shape, st)] = x[i];
}

/* Padding: each output element reads its source element, or is `value` (mode 0, constant); sources
 * past an edge are mirrored without the edge (mode 1, reflect: padding < size) or clamped to it
 * (mode 2, edge). Shapes are padded in front to 8 dimensions with 1 (before 0). */
#define PAD_STEP(c)                                                          \
    q = rem % oshape.c; rem /= oshape.c; s = q - before.c; d = ishape.c;     \
    if (s < 0 || s >= d) {                                                   \
        if (mode == 0) outside = 1;                                          \
        else if (mode == 1) s = s < 0 ? -s : 2 * (d - 1) - s;                \
        else s = s < 0 ? 0 : d - 1;                                          \
    }                                                                        \
    off += s * xst.c;
__kernel void pad_k(__global const V* x, __global V* y, const int n, const int8 oshape, const int8 ishape,
                    const int8 before, const int8 xst, const int mode, const V value) {
    int i = get_global_id(0);
    if (i >= n) return;
    int rem = i, off = 0, outside = 0, q, s, d;
    PAD_STEP(s7) PAD_STEP(s6) PAD_STEP(s5) PAD_STEP(s4) PAD_STEP(s3) PAD_STEP(s2) PAD_STEP(s1) PAD_STEP(s0)
    y[i] = outside ? value : x[off];
}
#undef PAD_STEP

/* gather and scatter_add along one axis, viewed as (outer, axis, inner) blocks. The schema checked
 * every index is in [-N, N): negative ones wrap here. */

/* y[o, j, r] = x[o, idx[j], r]: one work-item per output element (K indices, axis of size N). */
__kernel void gather_k(__global const V* x, __global const IDX_T* idx, __global V* y, const int total,
                       const int K, const int N, const int inner) {
    int i = get_global_id(0);
    if (i < total) {
        int r = i % inner, t = i / inner;
        int j = t % K, o = t / K;
        long s = (long)idx[j];
        if (s < 0) s += N;
        y[i] = x[((long)o * N + s) * inner + r];
    }
}

/* y[o, s, r] = sum of u[o, j, r] over the j whose index is s, in index order: perm[start[s] .. start[s + 1])
 * lists those j (a stable sort of the indices, made on the host). One work-item per output element, no
 * atomics: deterministic. Float or integer V (integer sums wrap, as NumPy's do). */
__kernel void scatter_add_k(__global const V* u, __global const int* perm, __global const int* start,
                            __global V* y, const int total, const int K, const int N, const int inner) {
    int i = get_global_id(0);
    if (i < total) {
        int r = i % inner, t = i / inner;
        int s = t % N, o = t / N;
        V acc = (V)0;
        for (int p = start[s]; p < start[s + 1]; ++p) acc += u[((long)o * K + perm[p]) * inner + r];
        y[i] = acc;
    }
}
