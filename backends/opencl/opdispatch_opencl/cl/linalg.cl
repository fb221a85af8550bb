/* Batched GEMM: C[b] (=|+=) A[b] @ B[b].
 *   A[b] is M x K with element (m, k) at m*sam + k*sak (row-major, or transposed with sam=1),
 *   B[b] is K x N row-major (leading dimension ldb), C[b] is M x N row-major (ldc).
 *   Batch index b = b1 * B2 + b2 with b1, b2 stepping the operands by (s?1, s?2): a batch of
 *   (images, groups) for convolutions, broadcast batch dimensions for matmul.
 * C's columns may be split into panels: column q lives at (q / cp) * cps + q % cp (cp = N: plain
 * row-major), which lets conv2d write (images, C_out, P) directly from a GEMM over images*P columns.
 * Each work-item computes an RM x (2*VW) register block from two VW-wide vectors per B row; blocks
 * on the right/bottom edges take a bounds-checked scalar path. */
#ifndef RM
#define RM 4
#endif
#ifndef VW
#define VW 8
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VT CAT(T, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)
#define BN (2 * VW)
#define C_AT(r, q) (C + (size_t)((q) / cp) * cps + (size_t)(r) * ldc + (q) % cp)

__kernel void gemm(const int M, const int N, const int K,
                   __global const T* A, const int a_off, const int sam, const int sak, const int sa1, const int sa2,
                   __global const T* B, const int b_off, const int ldb, const int sb1, const int sb2,
                   __global T* C, const int c_off, const int ldc, const int sc1, const int sc2,
                   const int cp, const int cps, const int B2, const int accumulate) {
    const int j0 = get_global_id(1) * BN;
    const int i0 = get_global_id(0) * RM;
    const int b = get_global_id(2);
    if (i0 >= M || j0 >= N) return;
    const int b1 = b / B2, b2 = b - (b / B2) * B2;
    A += a_off + b1 * sa1 + b2 * sa2;
    B += b_off + b1 * sb1 + b2 * sb2;
    C += c_off + b1 * sc1 + b2 * sc2;
    if (i0 + RM <= M && j0 + BN <= N) {
        VT acc0[RM], acc1[RM];
        #pragma unroll
        for (int r = 0; r < RM; ++r) { acc0[r] = (VT)(0); acc1[r] = (VT)(0); }
        __global const T* ap = A + i0 * sam;
        __global const T* bp = B + j0;
        for (int k = 0; k < K; ++k) {
            const VT v0 = VLOAD(0, bp);
            const VT v1 = VLOAD(0, bp + VW);
            #pragma unroll
            for (int r = 0; r < RM; ++r) {
                const VT a = (VT)(ap[r * sam]);
                acc0[r] += a * v0;
                acc1[r] += a * v1;
            }
            ap += sak;
            bp += ldb;
        }
        const int pan = j0 / cp;
        if ((j0 + BN - 1) / cp == pan) {  /* the block lies in one panel: vector stores */
            __global T* cb = C + (size_t)pan * cps + (j0 - pan * cp);
            #pragma unroll
            for (int r = 0; r < RM; ++r) {
                __global T* c = cb + (i0 + r) * ldc;
                if (accumulate) {
                    acc0[r] += VLOAD(0, c);
                    acc1[r] += VLOAD(0, c + VW);
                }
                VSTORE(acc0[r], 0, c);
                VSTORE(acc1[r], 0, c + VW);
            }
        } else {
            T lanes[BN];
            for (int r = 0; r < RM; ++r) {
                VSTORE(acc0[r], 0, lanes);
                VSTORE(acc1[r], 0, lanes + VW);
                for (int q = 0; q < BN; ++q) {
                    __global T* c = C_AT(i0 + r, j0 + q);
                    *c = accumulate ? *c + lanes[q] : lanes[q];
                }
            }
        }
    } else {
        const int rm = min(RM, M - i0), cn = min(BN, N - j0);
        for (int r = 0; r < rm; ++r) {
            for (int c = 0; c < cn; ++c) {
                T s = (T)0;
                for (int k = 0; k < K; ++k) s += A[(i0 + r) * sam + k * sak] * B[k * ldb + j0 + c];
                __global T* cq = C_AT(i0 + r, j0 + c);
                *cq = accumulate ? *cq + s : s;
            }
        }
    }
}
