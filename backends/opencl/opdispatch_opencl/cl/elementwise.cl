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

/* y[y_off + i] = x[offset(i)]: transpose, broadcast_to, materialised broadcasts. */
__kernel void strided_copy(__global const T* x, __global T* y, const int n, const int8 shape, const int8 st,
                           const int y_off) {
    int i = get_global_id(0);
    if (i < n) y[y_off + i] = x[strided_offset(i, shape, st)];
}

/* The same, one work-item per run of the innermost dimension (shape.s7 elements, stride st.s7):
 * the index arithmetic is paid once per run instead of once per element. */
__kernel void strided_copy_rows(__global const T* x, __global T* y, const int rows, const int8 shape,
                                const int8 st, const int y_off) {
    const int row = get_global_id(0);
    if (row >= rows) return;
    const int inner = shape.s7, step = st.s7;
    __global const T* src = x + strided_offset(row * inner, shape, st);
    __global T* dst = y + y_off + row * inner;
    for (int k = 0; k < inner; ++k) dst[k] = src[k * step];
}
