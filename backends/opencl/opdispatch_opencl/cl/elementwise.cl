/* Element-wise kernels: unary maps, binary maps (same shape or NumPy broadcasting), strided copy. */

#define UNARY(name, expr)                                                   \
__kernel void name(__global const T* x, __global T* y, const int n) {       \
    int i = get_global_id(0);                                               \
    if (i < n) { T v = x[i]; y[i] = (expr); }                               \
}

UNARY(relu_k, (v > (T)0 || isnan(v)) ? v : (T)0)
UNARY(sigmoid_k, v >= (T)0 ? (T)1 / ((T)1 + exp(-v)) : exp(v) / ((T)1 + exp(v)))
UNARY(tanh_k, tanh(v))
UNARY(exp_k, exp(v))
UNARY(log_k, log(v))
UNARY(sqrt_k, sqrt(v))
UNARY(neg_k, -v)

UNARY(abs_k, fabs(v))
UNARY(erf_k, erf(v))
/* PyTorch's forms; NaN fails both comparisons and stays NaN */
UNARY(hardsigmoid_k, v <= (T)-3 ? (T)0 : (v >= (T)3 ? (T)1 : v / (T)6 + (T)0.5))
UNARY(hardswish_k, v <= (T)-3 ? (T)0 : (v >= (T)3 ? v : v * (v + (T)3) / (T)6))
/* x * Phi(x); 0 at -inf (the limit, not -inf * 0) */
UNARY(gelu_k, v == (T)-INFINITY ? (T)0 : v * (T)0.5 * ((T)1 + erf(v * (T)0.70710678118654752440)))
UNARY(gelu_tanh_k, v == (T)-INFINITY ? (T)0
      : v * (T)0.5 * ((T)1 + tanh((T)0.79788456080286535588 * (v + (T)0.044715 * v * v * v))))

/* np.clip's rule: NaN stays NaN (fmax/fmin would drop it), lo > hi gives hi; absent bounds are -+inf */
__kernel void clip_k(__global const T* x, __global T* y, const int n, const T lo, const T hi) {
    int i = get_global_id(0);
    if (i < n) { T v = x[i]; y[i] = isnan(v) ? v : fmin(fmax(v, lo), hi); }
}

__kernel void leaky_relu_k(__global const T* x, __global T* y, const int n, const T slope) {
    int i = get_global_id(0);
    if (i < n) { T v = x[i]; y[i] = v > (T)0 ? v : v * slope; }
}

#define BINARY(name, expr)                                                  \
__kernel void name##_same(__global const T* a, __global const T* b, __global T* y, const int n) { \
    int i = get_global_id(0);                                               \
    if (i < n) { T u = a[i], v = b[i]; y[i] = (expr); }                     \
}                                                                           \
__kernel void name##_bcast(__global const T* a, __global const T* b, __global T* y, const int n, \
                           const int8 shape, const int8 sa, const int8 sb) { \
    int i = get_global_id(0);                                               \
    if (i < n) {                                                            \
        int oa, ob;                                                         \
        strided_offset2(i, shape, sa, sb, &oa, &ob);                        \
        T u = a[oa], v = b[ob]; y[i] = (expr);                              \
    }                                                                       \
}

BINARY(add_k, u + v)
BINARY(sub_k, u - v)
BINARY(mul_k, u * v)
BINARY(div_k, u / v)
BINARY(relu_backward_k, v > (T)0 ? u : (T)0)
BINARY(pow_k, pow(u, v))
/* np.maximum / np.minimum: NaN where either is NaN (u + v is then NaN), else the larger / smaller */
BINARY(maximum_k, (isnan(u) || isnan(v)) ? u + v : (u > v ? u : v))
BINARY(minimum_k, (isnan(u) || isnan(v)) ? u + v : (u < v ? u : v))
