/* cast (elementwise family, its own small program: one build per (source, result) type pair).
 * SRC and DST are the OpenCL C types (-D SRC=float -D DST=long; bool is uchar 0/1); TO_BOOL is
 * defined for bool results: nonzero (NaN included) is 1, as NumPy's astype(bool). Otherwise C's
 * conversion: floats to integers truncate toward zero, double to float and integers to floats round
 * to nearest even (NumPy's rules for values in range). */
__kernel void cast_k(__global const SRC* x, __global DST* y, const int n) {
    int i = get_global_id(0);
    if (i < n) {
#ifdef TO_BOOL
        y[i] = (x[i] != (SRC)0) ? 1 : 0;
#else
        y[i] = (DST)x[i];
#endif
    }
}
