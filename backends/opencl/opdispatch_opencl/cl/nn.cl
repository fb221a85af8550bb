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
