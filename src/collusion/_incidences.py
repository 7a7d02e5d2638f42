"""Co-bidding incidences: every pair of firms meeting in a column of an incidence matrix.

One kernel shared by the co-bidding features (pair counts, wins, suspicious
co-bids) and the graph's out-and-back meta-paths (company-tender-company).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["A_WON", "B_WON", "CHUNK", "FLAGGED", "chunks", "cobid_incidences"]


#: Rows per chunk of the pair computations: temporaries of 8 MB are reused
#: by the allocator, larger ones are fresh pages every time.
CHUNK = 1 << 20


def chunks(n: int) -> list[slice]:
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


#: Bits of an incidence code (see :func:`cobid_incidences`).
FLAGGED, A_WON, B_WON = 1, 2, 4


def cobid_incidences(
    B: sp.csr_matrix, flags: np.ndarray | None, won: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every co-bidding incidence (pair of bidders of one tender), sorted by pair.

    ``B`` must be canonical CSR. Returns ``a_ptr``, ``b`` and ``code``: the
    incidences of pairs ``a < b`` as a CSR layout over ``a`` (row ``a`` holds
    ``b[a_ptr[a]:a_ptr[a + 1]]``, ascending, a pair repeated once per shared
    tender) with each incidence's code. Without
    ``won`` the code is the tender's flag (bool, all True without ``flags``);
    with ``won`` (a bool per stored entry of ``B``: that bid won) it is a
    ``uint8`` of bits ``FLAGGED``, ``A_WON`` and ``B_WON``, so win counts
    ride along the same two passes instead of a ``W·Bᵀ`` product and a lookup.

    Two linear passes and no comparison sort: the incidences are enumerated
    grouped by their larger firm ``b`` (each bid pairs with the bidders of its
    tender that have smaller codes), then the CSR→CSC conversion, a stable
    counting sort by column, regroups them by ``a`` with ``b`` ascending inside
    each row. Sorting the 32 million int64 pair keys of a 1M-tender market
    takes 4-5 s; the two passes take about 1.5 s in int32.
    """
    n_c, n_t = B.shape
    # One conversion carries every bid's CSR position as its data (instead of
    # B's float weights): csr_tocsc writes each tender's bidders in ascending
    # code order, and scattering the positions back inverts the permutation
    # (a CSC→CSR conversion did that before).
    small = B.nnz < np.iinfo(np.int32).max
    Bc = sp.csr_matrix((np.arange(B.nnz, dtype=np.int32 if small else np.int64), B.indices, B.indptr),
                       shape=B.shape).tocsc()
    sizes = np.diff(Bc.indptr)
    total = int((sizes * (sizes - 1) // 2).sum())
    # int32 indices halve the memory traffic of every pass below; scipy keeps
    # them as they are when the indptr has the same dtype.
    it = np.int32 if max(total, Bc.nnz, n_c, n_t) < np.iinfo(np.int32).max else np.int64
    t_ptr = Bc.indptr.astype(it)
    comp = Bc.indices.astype(it)
    # CSC position of every bid, in company-major order: its rank in its
    # tender is the number of co-bidders with a smaller code.
    pos = np.empty(Bc.nnz, dtype=it)
    pos[Bc.data] = np.arange(Bc.nnz, dtype=it)
    del Bc
    if won is not None:
        # The partner a's win flag rides in the low bit of its code: one
        # gather per incidence fetches both (two gathers took 1.7x longer).
        comp = comp.astype(np.int64 if n_c >= np.iinfo(np.int32).max // 2 else it) << 1
        comp[pos] |= won
    first = t_ptr[B.indices]  # CSC position of the first bidder of each bid's tender
    rank = pos - first
    del pos
    end = np.cumsum(rank, dtype=it)
    start = end - rank  # first incidence of each bid
    # Incidence k of bid e pairs it with the bidder at CSC position
    # first[e] + k, for k < rank[e].
    shift = first - start
    del first
    a = np.empty(total, dtype=it)
    flag = np.empty(total, dtype=bool if won is None else np.uint8)
    if won is None and flags is None:
        flag[:] = True
    # Bid by bid in chunks: the positions and flags of one chunk's incidences
    # are temporaries the allocator reuses, where whole-market ones would be
    # hundreds of MB of fresh pages (see chunks).
    step = max(CHUNK // 4, 1)
    for e0 in range(0, rank.size, step):
        e1 = min(e0 + step, rank.size)
        i0, i1, r = start[e0], end[e1 - 1], rank[e0:e1]
        at = np.arange(i0, i1, dtype=it)
        at += np.repeat(shift[e0:e1], r)
        if won is not None:
            a_won = comp[at]
            np.right_shift(a_won, 1, out=a[i0:i1], casting="unsafe")
            fl = np.repeat(won[e0:e1].view(np.uint8) * np.uint8(B_WON), r)
            fl |= (a_won.astype(np.uint8) & np.uint8(1)) * np.uint8(A_WON)
            if flags is not None:
                fl |= np.repeat(flags[B.indices[e0:e1]], r).view(np.uint8)
            flag[i0:i1] = fl
            continue
        a[i0:i1] = comp[at]
        if flags is not None:
            flag[i0:i1] = np.repeat(flags[B.indices[e0:e1]], r)
    del comp, shift, start
    b_ptr = np.concatenate((np.zeros(1, dtype=it), end))[B.indptr]  # incidences of each firm b
    del end, rank
    # Rows b, columns a  ->  rows a, columns b ascending.
    by_a = sp.csr_matrix((flag, a, b_ptr), shape=(n_c, n_c)).tocsc()
    return by_a.indptr, by_a.indices, by_a.data
