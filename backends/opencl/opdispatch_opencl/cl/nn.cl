/* softmax cross-entropy over (N, C) logits with integer labels of type LABEL_T (-D LABEL_T=long). */
#ifndef LABEL_T
#define LABEL_T long
#endif

/* Per-row loss: logsumexp(row) - row[label]. */
__kernel void xent_rows(__global const T* x, __global const LABEL_T* labels, __global T* loss, const int K,
                        __local T* scratch) {
    ROW_SETUP
    ROW_MAX_SUMEXP
    if (lid == 0) loss[row] = (m - r[labels[row]]) + log(s);
}

/* (softmax(row) - onehot(label)) * dloss / N. */
__kernel void xent_backward_rows(__global const T* x, __global const LABEL_T* labels, __global const T* dloss,
                                 __global T* dx, const int K, const int N, __local T* scratch) {
    ROW_SETUP
    ROW_MAX_SUMEXP
    const T g = dloss[0] / (T)N;
    const int label = (int)labels[row];
    __global T* o = dx + (size_t)row * K;
    for (int k = lid; k < K; k += L) o[k] = (exp(r[k] - m) / s - (k == label ? (T)1 : (T)0)) * g;
}

/* dropout: y = x * (kept ? scale : 0), element i kept when the top 24 bits of
   mix64(key + i * GOLDEN) are >= threshold (splitmix64's finaliser, arithmetic mod 2**64: the mask
   of opdispatch.reference.nn.dropout_keep, bit for bit). key and threshold come from the host. */
inline ulong mix64(ulong z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

__kernel void dropout_k(__global const T* x, __global T* y, const int n, const ulong key, const uint threshold,
                        const T scale) {
    int i = get_global_id(0);
    if (i < n) {
        ulong h = mix64(key + (ulong)i * 0x9E3779B97F4A7C15UL);
        y[i] = x[i] * ((uint)(h >> 40) >= threshold ? scale : (T)0);
    }
}
