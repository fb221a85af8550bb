/* Row kernels over a contiguous (rows, K) view: one work-group per row with a local tree
 * reduction (or one work-item per row for short rows, the *_seq variants). The host moves the
 * reduced axes last first. */

__kernel void sum_rows(__global const T* x, __global T* y, const int K, const T divisor, __local T* scratch) {
    ROW_SETUP
    T acc = (T)0;
    for (int k = lid; k < K; k += L) acc += r[k];
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    if (lid == 0) y[row] = scratch[0] / divisor;
}

__kernel void sum_rows_seq(__global const T* x, __global T* y, const int K, const T divisor, const int rows) {
    const int row = get_global_id(0);
    if (row >= rows) return;
    __global const T* r = x + (size_t)row * K;
    T acc = (T)0;
    for (int k = 0; k < K; ++k) acc += r[k];
    y[row] = acc / divisor;
}

__kernel void max_rows(__global const T* x, __global T* y, const int K, __local T* scratch) {
    ROW_SETUP
    T acc = -INFINITY;
    for (int k = lid; k < K; k += L) acc = nanmax2(r[k], acc);
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, nanmax2)
    if (lid == 0) y[row] = scratch[0];
}

__kernel void max_rows_seq(__global const T* x, __global T* y, const int K, const int rows) {
    const int row = get_global_id(0);
    if (row >= rows) return;
    __global const T* r = x + (size_t)row * K;
    T acc = -INFINITY;
    for (int k = 0; k < K; ++k) acc = nanmax2(r[k], acc);
    y[row] = acc;
}

__kernel void softmax_rows(__global const T* x, __global T* y, const int K, const int log_mode,
                           __local T* scratch) {
    ROW_SETUP
    ROW_MAX_SUMEXP
    __global T* o = y + (size_t)row * K;
    if (log_mode) {
        T ls = log(s);
        for (int k = lid; k < K; k += L) o[k] = (r[k] - m) - ls;
    } else {
        for (int k = lid; k < K; k += L) o[k] = exp(r[k] - m) / s;
    }
}

/* NaN-propagating minimum, like numpy.minimum. */
inline T nanmin2(T a, T b) { return (isnan(a) || a < b) ? a : b; }

/* The gradient of an extremum over each row: dy[row] split equally among the row's extrema (NaN
   extrema: the NaNs); PICK is nanmax2 or nanmin2, START its identity. */
#define EXTREMUM_BACKWARD_ROWS(NAME, START, PICK)                                                     \
__kernel void NAME(__global const T* x, __global const T* dy, __global T* dx, const int K,          \
                   __local T* scratch) {                                                             \
    ROW_SETUP                                                                                        \
    T m = START;                                                                                     \
    for (int k = lid; k < K; k += L) m = PICK(r[k], m);                                              \
    scratch[lid] = m;                                                                                \
    LOCAL_REDUCE(scratch, lid, L, PICK)                                                              \
    m = scratch[0];                                                                                  \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                    \
    const int mnan = isnan(m);                                                                       \
    T c = (T)0;                                                                                      \
    for (int k = lid; k < K; k += L) c += (r[k] == m || (mnan && isnan(r[k]))) ? (T)1 : (T)0;       \
    scratch[lid] = c;                                                                                \
    LOCAL_REDUCE(scratch, lid, L, ADD2)                                                              \
    const T g = dy[row] / scratch[0];                                                                \
    __global T* o = dx + (size_t)row * K;                                                            \
    for (int k = lid; k < K; k += L) o[k] = (r[k] == m || (mnan && isnan(r[k]))) ? g : (T)0;        \
}

EXTREMUM_BACKWARD_ROWS(max_backward_rows, -INFINITY, nanmax2)
EXTREMUM_BACKWARD_ROWS(min_backward_rows, INFINITY, nanmin2)

__kernel void min_rows(__global const T* x, __global T* y, const int K, __local T* scratch) {
    ROW_SETUP
    T acc = INFINITY;
    for (int k = lid; k < K; k += L) acc = nanmin2(r[k], acc);
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, nanmin2)
    if (lid == 0) y[row] = scratch[0];
}

__kernel void min_rows_seq(__global const T* x, __global T* y, const int K, const int rows) {
    const int row = get_global_id(0);
    if (row >= rows) return;
    __global const T* r = x + (size_t)row * K;
    T acc = INFINITY;
    for (int k = 0; k < K; ++k) acc = nanmin2(r[k], acc);
    y[row] = acc;
}
