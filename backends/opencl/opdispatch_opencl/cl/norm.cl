/* Batch norm over x viewed as (N, C, S): per-channel statistics with one work-group per channel
 * (two passes: mean, then the biased variance of x - mean), and element-wise apply kernels. */

#define CHANNEL_LOOP for (int i = lid; i < count; i += L)
#define AT(i) (((size_t)((i) / S) * C + c) * S + (i) % S)

__kernel void bn_stats(__global const T* x, __global T* mean, __global T* var, const int N, const int C, const int S,
                       __local T* scratch) {
    const int c = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    const int count = N * S;
    T acc = (T)0;
    CHANNEL_LOOP acc += x[AT(i)];
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    const T m = scratch[0] / (T)count;
    barrier(CLK_LOCAL_MEM_FENCE);
    acc = (T)0;
    CHANNEL_LOOP { const T d = x[AT(i)] - m; acc += d * d; }
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    if (lid == 0) { mean[c] = m; var[c] = scratch[0] / (T)count; }
}

inline T bn_scale(__global const T* var, __global const T* weight, int has_w, int c, T eps) {
    const T inv = (T)1 / sqrt(var[c] + eps);
    return has_w ? inv * weight[c] : inv;
}

__kernel void bn_apply(__global const T* x, __global T* y, __global const T* mean, __global const T* var,
                       __global const T* weight, __global const T* bias, const int has_w, const int has_b,
                       const T eps, const int C, const int S, const int total) {
    const int idx = get_global_id(0);
    if (idx >= total) return;
    const int c = (idx / S) % C;
    const T v = (x[idx] - mean[c]) * bn_scale(var, weight, has_w, c, eps);
    y[idx] = has_b ? v + bias[c] : v;
}

/* new_running = (1 - momentum) * running + momentum * batch_stat (unbiased variance). */
__kernel void bn_running(__global const T* rm, __global const T* rv, __global const T* mean, __global const T* var,
                         __global T* new_m, __global T* new_v, const T momentum, const T unbias, const int C) {
    const int c = get_global_id(0);
    if (c >= C) return;
    new_m[c] = ((T)1 - momentum) * rm[c] + momentum * mean[c];
    new_v[c] = ((T)1 - momentum) * rv[c] + momentum * (var[c] * unbias);
}

/* dbias = sum dy, dweight = sum dy * xhat per channel. */
__kernel void bn_backward_reduce(__global const T* x, __global const T* dy, __global const T* mean,
                                 __global const T* var, __global T* dweight, __global T* dbias, const T eps,
                                 const int N, const int C, const int S, __local T* scratch) {
    const int c = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    const int count = N * S;
    const T m = mean[c], inv = (T)1 / sqrt(var[c] + eps);
    T acc = (T)0;
    CHANNEL_LOOP acc += dy[AT(i)];
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    const T db = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    acc = (T)0;
    CHANNEL_LOOP { const size_t o = AT(i); acc += dy[o] * ((x[o] - m) * inv); }
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    if (lid == 0) { dbias[c] = db; dweight[c] = scratch[0]; }
}

__kernel void bn_backward_dx(__global const T* x, __global const T* dy, __global const T* mean,
                             __global const T* var, __global const T* weight, const int has_w,
                             __global const T* dweight, __global const T* dbias, const T eps, const int training,
                             const int count, const int C, const int S, const int total, __global T* dx) {
    const int idx = get_global_id(0);
    if (idx >= total) return;
    const int c = (idx / S) % C;
    const T scale = bn_scale(var, weight, has_w, c, eps);
    if (training) {
        const T xhat = (x[idx] - mean[c]) / sqrt(var[c] + eps);
        dx[idx] = scale * (dy[idx] - dbias[c] / (T)count - xhat * (dweight[c] / (T)count));
    } else {
        dx[idx] = dy[idx] * scale;
    }
}

/* Layer norm over x viewed as (R, M): one work-group per row, two passes (mean, then the biased variance
 * of x - mean). The row's mean and 1 / sqrt(var + eps) are left in (m, inv). */
#define LN_ROW_STATS                                                    \
    const int row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0); \
    __global const T* r = x + (size_t)row * M;                          \
    T acc = (T)0;                                                       \
    for (int j = lid; j < M; j += L) acc += r[j];                       \
    scratch[lid] = acc;                                                 \
    LOCAL_REDUCE(scratch, lid, L, ADD2)                                 \
    const T m = scratch[0] / (T)M;                                      \
    barrier(CLK_LOCAL_MEM_FENCE);                                       \
    acc = (T)0;                                                         \
    for (int j = lid; j < M; j += L) { const T d = r[j] - m; acc += d * d; } \
    scratch[lid] = acc;                                                 \
    LOCAL_REDUCE(scratch, lid, L, ADD2)                                 \
    const T inv = (T)1 / sqrt(scratch[0] / (T)M + eps);                 \
    barrier(CLK_LOCAL_MEM_FENCE);

__kernel void ln_forward(__global const T* x, __global T* y, __global const T* weight, __global const T* bias,
                         const int has_w, const int has_b, const T eps, const int M, __local T* scratch) {
    LN_ROW_STATS
    __global T* out = y + (size_t)row * M;
    for (int j = lid; j < M; j += L) {
        T v = (r[j] - m) * inv;
        if (has_w) v *= weight[j];
        if (has_b) v += bias[j];
        out[j] = v;
    }
}

/* dx = inv * (g - mean(g) - xhat * mean(g * xhat)) per row, g = dy * weight; also stores the row's mean
 * and inv for ln_backward_params. */
__kernel void ln_backward_dx(__global const T* x, __global const T* dy, __global const T* weight, const int has_w,
                             const T eps, const int M, __global T* dx, __global T* means, __global T* invs,
                             __local T* scratch) {
    LN_ROW_STATS
    __global const T* d = dy + (size_t)row * M;
    acc = (T)0;
    for (int j = lid; j < M; j += L) acc += has_w ? d[j] * weight[j] : d[j];
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    const T mg = scratch[0] / (T)M;
    barrier(CLK_LOCAL_MEM_FENCE);
    acc = (T)0;
    for (int j = lid; j < M; j += L) acc += (has_w ? d[j] * weight[j] : d[j]) * ((r[j] - m) * inv);
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    const T mgx = scratch[0] / (T)M;
    __global T* out = dx + (size_t)row * M;
    for (int j = lid; j < M; j += L) {
        const T g = has_w ? d[j] * weight[j] : d[j];
        out[j] = inv * (g - mg - (r[j] - m) * inv * mgx);
    }
    if (lid == 0) { means[row] = m; invs[row] = inv; }
}

/* dweight[j] = sum over rows of dy * xhat, dbias[j] = sum of dy: one work-group per column j. */
__kernel void ln_backward_params(__global const T* x, __global const T* dy, __global const T* means,
                                 __global const T* invs, __global T* dweight, __global T* dbias, const int R,
                                 const int M, __local T* scratch) {
    const int j = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    T acc = (T)0;
    for (int i = lid; i < R; i += L) acc += dy[(size_t)i * M + j];
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    const T db = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    acc = (T)0;
    for (int i = lid; i < R; i += L) {
        const size_t o = (size_t)i * M + j;
        acc += dy[o] * ((x[o] - means[i]) * invs[i]);
    }
    scratch[lid] = acc;
    LOCAL_REDUCE(scratch, lid, L, ADD2)
    if (lid == 0) { dbias[j] = db; dweight[j] = scratch[0]; }
}
