/* gather and scatter_add along one axis, viewed as (outer, axis, inner) blocks; IDX_T is the index type
 * (-D IDX_T=int or long). The schema checked every index is in [-N, N): negative ones wrap here. */
#ifndef IDX_T
#define IDX_T long
#endif

/* y[o, j, r] = x[o, idx[j], r]: one work-item per output element (K indices, axis of size N). */
__kernel void gather_k(__global const T* x, __global const IDX_T* idx, __global T* y, const int total,
                       const int K, const int N, const int inner) {
    int i = get_global_id(0);
    if (i < total) {
        int r = i % inner, t = i / inner;
        int j = t % K, o = t / K;
        long s = (long)idx[j];
        if (s < 0) s += N;
        y[i] = x[((long)o * N + s) * inner + r];
    }
}

/* y[o, s, r] = sum of u[o, j, r] over the j whose index is s, in index order: perm[start[s] .. start[s + 1])
 * lists those j (a stable sort of the indices, made on the host). One work-item per output element, no
 * atomics: deterministic. */
__kernel void scatter_add_k(__global const T* u, __global const int* perm, __global const int* start,
                            __global T* y, const int total, const int K, const int N, const int inner) {
    int i = get_global_id(0);
    if (i < total) {
        int r = i % inner, t = i / inner;
        int s = t % N, o = t / N;
        T acc = (T)0;
        for (int p = start[s]; p < start[s + 1]; ++p) acc += u[((long)o * K + perm[p]) * inner + r];
        y[i] = acc;
    }
}
