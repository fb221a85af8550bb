/* conv2d helpers around the GEMM: im2col (windows of x into a column matrix with caller-chosen
 * strides), col2im (the transposed gather, no atomics: each input pixel sums the taps that read
 * it) and the per-channel bias add. Geometry: x (N, C, H, W), kernel KH x KW, output OH x OW,
 * stride (sh, sw), leading padding (pt, pl), dilation (dh, dw), Cg input channels per group.
 * Column element (n, g, r = (cg*KH + i)*KW + j, p = oh*OW + ow) lives at
 * n*s_n + g*s_g + r*s_r + p*s_p; images n are counted from n0 in x. */

#define GEOMETRY const int C, const int H, const int W, const int KH, const int KW, const int OH, const int OW, \
                 const int sh, const int sw, const int pt, const int pl, const int dh, const int dw, const int Cg

/* One work-item per (column-matrix row of image n, output row oh): a contiguous run of OW taps. */
__kernel void im2col(__global const T* x, __global T* cols, const int rows, GEOMETRY,
                     const int s_n, const int s_g, const int s_r, const int s_p, const int n0) {
    const int oh = get_global_id(0);
    int t = get_global_id(1);
    if (oh >= OH || t >= rows) return;
    const int j = t % KW; t /= KW;
    const int i = t % KH; t /= KH;
    const int c = t % C;
    const int n = t / C;
    const int g = c / Cg, cg = c - (c / Cg) * Cg;
    const int r = (cg * KH + i) * KW + j;
    __global T* out = cols + (size_t)n * s_n + (size_t)g * s_g + (size_t)r * s_r + (size_t)oh * OW * s_p;
    const int h = oh * sh - pt + i * dh;
    if (h < 0 || h >= H) {
        for (int ow = 0; ow < OW; ++ow) out[(size_t)ow * s_p] = (T)0;
        return;
    }
    __global const T* src = x + (((size_t)(n0 + n) * C + c) * H + h) * W;
    const int w0 = j * dw - pl;
    for (int ow = 0; ow < OW; ++ow) {
        const int w = w0 + ow * sw;
        out[(size_t)ow * s_p] = (w >= 0 && w < W) ? src[w] : (T)0;
    }
}

/* One work-item per input row (image n, channel c, row h): each element sums the column entries
 * of the taps that read it. */
__kernel void col2im(__global const T* cols, __global T* dx, const int rows, GEOMETRY,
                     const int s_n, const int s_g, const int s_r, const int n0) {
    int t = get_global_id(0);
    if (t >= rows) return;
    const int h = t % H; t /= H;
    const int c = t % C;
    const int n = t / C;
    const int g = c / Cg, cg = c - (c / Cg) * Cg;
    __global const T* base = cols + (size_t)n * s_n + (size_t)g * s_g;
    __global T* out = dx + (((size_t)(n0 + n) * C + c) * H + h) * W;
    for (int w = 0; w < W; ++w) out[w] = (T)0;
    for (int i = 0; i < KH; ++i) {
        const int hh = h + pt - i * dh;
        if (hh < 0) break;
        if (hh % sh) continue;
        const int oh = hh / sh;
        if (oh >= OH) continue;
        for (int j = 0; j < KW; ++j) {
            __global const T* src = base + (size_t)((cg * KH + i) * KW + j) * s_r + oh * OW;
            const int shift = pl - j * dw;  /* ww = w + shift; ow = ww / sw */
            for (int w = max(0, -shift); w < W; ++w) {
                const int ww = w + shift;
                if (sw == 1) {
                    if (ww >= OW) break;
                    out[w] += src[ww];
                } else if (ww % sw == 0) {
                    if (ww / sw >= OW) break;
                    out[w] += src[ww / sw];
                }
            }
        }
    }
}

/* y (N, C, P) += bias[c]. */
__kernel void bias_add(__global T* y, __global const T* bias, const int total, const int C, const int P) {
    const int idx = get_global_id(0);
    if (idx < total) y[idx] += bias[(idx / P) % C];
}
