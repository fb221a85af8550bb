/* Pooling over x (N, C, H, W) into (N, C, OH, OW); one work-item per output (forward, argmax) or
 * per input element (the backward gathers, which sum the windows whose taps read that element). */

#define GEOMETRY const int H, const int W, const int OH, const int OW, const int KH, const int KW, \
                 const int sh, const int sw, const int pt, const int pl, const int dh, const int dw

#define OUT_INDEX                                                   \
    const int idx = get_global_id(0);                               \
    if (idx >= total) return;                                       \
    const int ow = idx % OW;                                        \
    const int oh = (idx / OW) % OH;                                 \
    const int nc = idx / (OW * OH);                                 \
    __global const T* xp = x + (size_t)nc * H * W;                  \
    const int h0 = oh * sh - pt, w0 = ow * sw - pl;

__kernel void max_pool(__global const T* x, __global T* y, const int total, GEOMETRY) {
    OUT_INDEX
    T m = -INFINITY;
    for (int i = 0; i < KH; ++i) {
        const int h = h0 + i * dh;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < KW; ++j) {
            const int w = w0 + j * dw;
            if (w >= 0 && w < W) m = nanmax2(xp[h * W + w], m);
        }
    }
    y[idx] = m;
}

/* Index (h*W + w) of each window's first maximal real element, row-major (a NaN is maximal);
 * -1 for a window that covers no real element. */
__kernel void max_pool_argmax(__global const T* x, __global int* arg, const int total, GEOMETRY) {
    OUT_INDEX
    T best = (T)0;
    int where = -1;
    for (int i = 0; i < KH; ++i) {
        const int h = h0 + i * dh;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < KW; ++j) {
            const int w = w0 + j * dw;
            if (w < 0 || w >= W) continue;
            const T v = xp[h * W + w];
            if (where < 0 || (!isnan(best) && (isnan(v) || v > best))) { best = v; where = h * W + w; }
        }
    }
    arg[idx] = where;
}

__kernel void max_pool_backward(__global const int* arg, __global const T* dy, __global T* dx, const int total,
                                GEOMETRY) {
    const int idx = get_global_id(0);
    if (idx >= total) return;
    const int w = idx % W;
    const int h = (idx / W) % H;
    const int nc = idx / (W * H);
    const int self = h * W + w;
    const size_t base = (size_t)nc * OH * OW;
    T s = (T)0;
    for (int i = 0; i < KH; ++i) {
        const int hh = h + pt - i * dh;
        if (hh < 0) break;
        if (hh % sh || hh / sh >= OH) continue;
        for (int j = 0; j < KW; ++j) {
            const int ww = w + pl - j * dw;
            if (ww < 0) break;
            if (ww % sw || ww / sw >= OW) continue;
            const size_t o = base + (hh / sh) * OW + ww / sw;
            if (arg[o] == self) s += dy[o];
        }
    }
    dx[idx] = s;
}

/* Divisor of window start a along one axis: the window clipped to [lo, hi). */
inline int clipped(int start, int k, int lo, int hi) { return min(start + k, hi) - max(start, lo); }

inline int divisor(int oh, int ow, int H, int W, int KH, int KW, int sh, int sw, int pt, int pb, int pl, int pr,
                   int include_pad) {
    const int hs = oh * sh - pt, ws = ow * sw - pl;
    return include_pad ? clipped(hs, KH, -pt, H + pb) * clipped(ws, KW, -pl, W + pr)
                       : clipped(hs, KH, 0, H) * clipped(ws, KW, 0, W);
}

__kernel void avg_pool(__global const T* x, __global T* y, const int total, GEOMETRY, const int pb, const int pr,
                       const int include_pad) {
    OUT_INDEX
    T s = (T)0;
    for (int i = 0; i < KH; ++i) {
        const int h = h0 + i;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < KW; ++j) {
            const int w = w0 + j;
            if (w >= 0 && w < W) s += xp[h * W + w];
        }
    }
    y[idx] = s / (T)divisor(oh, ow, H, W, KH, KW, sh, sw, pt, pb, pl, pr, include_pad);
}

__kernel void avg_pool_backward(__global const T* dy, __global T* dx, const int total, GEOMETRY, const int pb,
                                const int pr, const int include_pad) {
    const int idx = get_global_id(0);
    if (idx >= total) return;
    const int w = idx % W;
    const int h = (idx / W) % H;
    const int nc = idx / (W * H);
    __global const T* g = dy + (size_t)nc * OH * OW;
    T s = (T)0;
    for (int i = 0; i < KH; ++i) {
        const int hh = h + pt - i;
        if (hh < 0) break;
        if (hh % sh || hh / sh >= OH) continue;
        for (int j = 0; j < KW; ++j) {
            const int ww = w + pl - j;
            if (ww < 0) break;
            if (ww % sw || ww / sw >= OW) continue;
            const int oh = hh / sh, ow = ww / sw;
            s += g[oh * OW + ow] / (T)divisor(oh, ow, H, W, KH, KW, sh, sw, pt, pb, pl, pr, include_pad);
        }
    }
    dx[idx] = s;
}
