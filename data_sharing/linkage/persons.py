"""From scored pairs to persons, and from persons to child keys that never change.

**Clustering** (:func:`cluster`) is connected components built greedily: the forced links (reviewers'
``match`` decisions) first, then the pairs above the upper threshold from the highest match weight
down (ties by source keys, so the result is deterministic). Two groups are joined only if no guard
objects:

* a ``non_match`` decision or a guard's cannot-link (parent/child, possible sibling, two ids of one
  agency held at the same time) between them;
* *within-agency uniqueness*: an agency gives a person one id, so two source keys of one agency join
  one person only with direct evidence between them -- their own pair above the settings' threshold
  for it (the upper one, or the lower one when other records link them strongly), or a reviewer's
  match -- never on a third record's word alone (e.g. a clinic record that resembles both twins);
* *generations*: the joined group would hold birth years (from ``birth_date_year_month``) the parent
  guard's gap or more apart.

A refused join is returned with its reason (the run queues it for review). Every source key is a node:
records of one source key are one person by construction.

**Child keys** (:func:`assign_child_keys`): each previous key passes to the new group holding most of
its source keys (ties: the group holding its earliest-seen source key). A group inheriting no key gets a
new one; a group inheriting several keeps the key that holds most of its source keys (then the key of
its earliest-seen source key, then of the smallest source key: the fewest warehouse rows change) and
retires the others, with the survivor as their successor (a *merge*). A key whose
source keys now sit in several groups has been *split*. New keys are
``ck_`` + 32 hex of SHA-256(state salt, anchor source key, counter): deterministic given the same inputs
and state, and meaningless without the state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

KEY_PREFIX = "ck_"


@dataclass(frozen=True)
class Clusters:
    labels: pd.DataFrame  # source_key, agency, cluster (int, dense, by smallest source key)
    refused: pd.DataFrame  # source_key_l, source_key_r, reason (joins the guards refused)


class _Groups:
    """Union-find whose roots know their members by agency and their birth-year range."""

    def __init__(self, agency: np.ndarray, year: np.ndarray) -> None:
        n = len(agency)
        self.parent = list(range(n))
        self.members: list[list[int]] = [[i] for i in range(n)]
        self.by_agency: list[dict[str, list[int]]] = [{str(agency[i]): [i]} for i in range(n)]
        y = [None if np.isnan(v) else int(v) for v in year.tolist()]
        self.ymin = list(y)
        self.ymax = list(y)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = p[root]
        while p[i] != root:
            p[i], i = root, p[i]
        return root

    def union(self, a: int, b: int) -> int:
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members[b])
        self.members[b] = []
        for ag, lst in self.by_agency[b].items():
            self.by_agency[a].setdefault(ag, []).extend(lst)
        self.by_agency[b] = {}
        for attr, fn in (("ymin", min), ("ymax", max)):
            va, vb = getattr(self, attr)[a], getattr(self, attr)[b]
            getattr(self, attr)[a] = vb if va is None else (va if vb is None else fn(va, vb))
        return a


def _pair(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components (label = smallest node index) by min-label propagation with pointer jumping."""
    label = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return label
    while True:
        m = np.minimum(label[a], label[b])
        before = label.copy()
        np.minimum.at(label, a, m)
        np.minimum.at(label, b, m)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(before, label):
            return label


def _edge_indices(index: pd.Index, frame: pd.DataFrame | None,
                  *cols: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The node indices of a frame's pairs (both ends known, not a loop) and the columns ``cols`` of those."""
    if frame is None or len(frame) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, [np.zeros(0) for _ in cols]
    a = index.get_indexer(frame["source_key_l"].astype(str))
    b = index.get_indexer(frame["source_key_r"].astype(str))
    ok = (a >= 0) & (b >= 0) & (a != b)
    return a[ok], b[ok], [frame[c].to_numpy()[ok] for c in cols]


def _complex_components(comp: np.ndarray, agency: np.ndarray, year: np.ndarray, cannot: tuple[np.ndarray, np.ndarray],
                        max_birth_year_gap: int | None) -> np.ndarray:
    """Per component: whether its records could conflict (an agency twice, birth years the gap apart, or a
    cannot-link inside)."""
    complex_comp = np.zeros(len(comp), dtype=bool)
    codes = pd.Index(sorted(set(agency.tolist()))).get_indexer(agency)
    per = pd.DataFrame({"comp": comp, "ag": codes}).value_counts()
    complex_comp[per[per > 1].index.get_level_values("comp").to_numpy()] = True
    if max_birth_year_gap is not None and not np.isnan(year).all():
        yy = pd.DataFrame({"comp": comp, "y": year}).dropna().groupby("comp").y.agg(["min", "max"])
        complex_comp[yy.index[(yy["max"] - yy["min"]) >= max_birth_year_gap].to_numpy()] = True
    ca, cb = cannot
    if len(ca):
        inside = comp[ca] == comp[cb]
        complex_comp[comp[ca[inside]]] = True
    return complex_comp


def _clusters(sk: np.ndarray, agency: np.ndarray, labels_root: np.ndarray, refused: list[tuple[str, str, str]]) -> Clusters:
    """Dense cluster ids ordered by each cluster's smallest source key, and the refused joins (each pair once)."""
    n = len(sk)
    order = np.argsort(sk, kind="stable")
    key_rank = np.empty(n, dtype=np.int64)
    key_rank[order] = np.arange(n)
    first = np.full(n, n, dtype=np.int64)
    np.minimum.at(first, labels_root, key_rank)
    root_ids = np.flatnonzero(first < n)
    dense = np.full(n, -1, dtype=np.int64)
    dense[root_ids[np.argsort(first[root_ids], kind="stable")]] = np.arange(len(root_ids))
    labels = pd.DataFrame({"source_key": sk, "agency": agency, "cluster": dense[labels_root]})
    ref = pd.DataFrame(refused, columns=["source_key_l", "source_key_r", "reason"])
    if len(ref):
        lo_k = np.minimum(ref.source_key_l, ref.source_key_r)
        hi_k = np.maximum(ref.source_key_l, ref.source_key_r)
        ref = ref.assign(source_key_l=lo_k, source_key_r=hi_k).drop_duplicates(["source_key_l", "source_key_r"])
    return Clusters(labels, ref.reset_index(drop=True))


def cluster(
    nodes: pd.DataFrame,
    links: pd.DataFrame,
    *,
    forced: pd.DataFrame | None = None,
    cannot: pd.DataFrame | None = None,
    within_evidence: pd.DataFrame | None = None,
    max_birth_year_gap: int | None = None,
    within_agency_needs_direct_evidence: bool = True,
) -> Clusters:
    """Group source keys into persons (see the module doc).

    ``nodes``: source_key, agency, birth_year (nullable). ``links``: source_key_l, source_key_r,
    match_weight -- the pairs that link on score. ``forced``: source_key_l, source_key_r (match
    decisions). ``cannot``: source_key_l, source_key_r, reason (non_match decisions and guards).
    ``within_evidence``: source_key_l, source_key_r -- pairs of one agency's source keys with enough
    direct evidence to share a person when other records link them (default: their own link).

    Components whose records could not conflict (no agency twice, birth years within the gap, no
    cannot-link inside) are taken whole -- the greedy walk would accept every edge of them -- and the
    greedy walk runs on the others only: same result, a fraction of the work.
    """
    nodes = nodes.reset_index(drop=True)
    sk = nodes["source_key"].astype(str).to_numpy()
    index = pd.Index(sk)
    if not index.is_unique:
        raise ValueError("cluster: source keys must be unique")
    n = len(sk)
    agency = nodes["agency"].astype(str).to_numpy()
    year = pd.to_numeric(nodes.get("birth_year", pd.Series(np.nan, index=nodes.index)), errors="coerce").to_numpy(dtype=float)
    fa, fb, _ = _edge_indices(index, forced)
    la, lb, (w,) = _edge_indices(index, links, "match_weight")
    ca, cb, (creason,) = _edge_indices(index, cannot, "reason")
    wa, wb, _ = _edge_indices(index, within_evidence)
    w = w.astype(float)
    # order: forced first (by source keys), then weight descending, then the pair's source keys
    fo = np.lexsort((np.maximum(sk[fa], sk[fb]), np.minimum(sk[fa], sk[fb]))) if len(fa) else np.zeros(0, dtype=np.int64)
    lo = np.lexsort((np.maximum(sk[la], sk[lb]), np.minimum(sk[la], sk[lb]), -w)) if len(la) else np.zeros(0, dtype=np.int64)
    ea = np.concatenate([fa[fo], la[lo]]).astype(np.int64)
    eb = np.concatenate([fb[fo], lb[lo]]).astype(np.int64)
    n_forced = len(fa)

    # fast path: components that cannot hold a conflict
    comp = _components(n, ea, eb)
    complex_comp = _complex_components(comp, agency, year, (ca, cb), max_birth_year_gap)
    labels_root = comp.copy()
    refused: list[tuple[str, str, str]] = []
    hard_nodes = np.flatnonzero(complex_comp[comp])
    if len(hard_nodes):
        edge_hard = complex_comp[comp[ea]]
        roots, ref = _greedy(
            hard_nodes, agency, year, ea[edge_hard], eb[edge_hard], np.flatnonzero(edge_hard) < n_forced,
            forced=(fa, fb), links=(la, lb), within=(wa, wb), cannot=(ca, cb, creason),
            gap=max_birth_year_gap, within_check=within_agency_needs_direct_evidence,
        )
        labels_root[hard_nodes] = roots
        refused = [(sk[a], sk[b], r) for a, b, r in ref]
    return _clusters(sk, agency, labels_root, refused)


def _greedy(
    nodes: np.ndarray,
    agency: np.ndarray,
    year: np.ndarray,
    ea: np.ndarray,
    eb: np.ndarray,
    is_forced: np.ndarray,
    *,
    forced: tuple[np.ndarray, np.ndarray],
    links: tuple[np.ndarray, np.ndarray],
    within: tuple[np.ndarray, np.ndarray],
    cannot: tuple[np.ndarray, np.ndarray, np.ndarray],
    gap: int | None,
    within_check: bool,
) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """The guarded greedy walk over ``nodes`` (global indices) and their edges in order.

    Returns each node's root (a global index) and the refused joins (global indices, reason).
    """
    local = {int(g): i for i, g in enumerate(nodes.tolist())}
    groups = _Groups(agency[nodes], year[nodes])
    keep = set(local)

    def loc_pairs(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
        return [(local[x], local[y]) for x, y in zip(a.tolist(), b.tolist(), strict=True) if x in keep and y in keep]

    cannot_of: dict[int, set[int]] = {}
    cannot_reason: dict[tuple[int, int], str] = {}
    ca, cb, cr = cannot
    for x, y, r in zip(ca.tolist(), cb.tolist(), cr.tolist(), strict=True):
        if x in keep and y in keep:
            a, b = local[x], local[y]
            cannot_of.setdefault(a, set()).add(b)
            cannot_of.setdefault(b, set()).add(a)
            cannot_reason.setdefault(_pair(a, b), str(r))
    # direct evidence between two records of one agency: a reviewer's match, a link on score, or the
    # settings' within-agency evidence
    direct = {_pair(a, b) for a, b in loc_pairs(*forced)}
    la, lb = links
    same = agency[la] == agency[lb]
    direct.update(_pair(a, b) for a, b in loc_pairs(la[same], lb[same]))
    direct.update(_pair(a, b) for a, b in loc_pairs(*within))

    refused: list[tuple[int, int, str]] = []
    for ga, gb, frc in zip(ea.tolist(), eb.tolist(), is_forced.tolist(), strict=True):
        a, b = local[ga], local[gb]
        ra, rb = groups.find(a), groups.find(b)
        if ra == rb:
            continue
        reason = None
        small, other = (ra, rb) if len(groups.members[ra]) <= len(groups.members[rb]) else (rb, ra)
        for m in groups.members[small]:
            hit = cannot_of.get(m)
            if hit:
                for c in hit:
                    if groups.find(c) == other:
                        reason = cannot_reason.get(_pair(m, c), "cannot_link")
                        break
            if reason:
                break
        if reason is None and gap is not None:
            lo_y = [v for v in (groups.ymin[ra], groups.ymin[rb]) if v is not None]
            hi_y = [v for v in (groups.ymax[ra], groups.ymax[rb]) if v is not None]
            if lo_y and hi_y and max(hi_y) - min(lo_y) >= gap:
                reason = "conflict_birth_years"
        if reason is None and within_check and not frc:
            ba, bb = groups.by_agency[ra], groups.by_agency[rb]
            for ag in ba.keys() & bb.keys():
                if any(_pair(x, y) not in direct for x in ba[ag] for y in bb[ag]):
                    reason = "conflict_within_agency"
                    break
        if reason is not None:
            refused.append((ga, gb, reason))
            continue
        groups.union(ra, rb)
    roots = np.array([nodes[groups.find(i)] for i in range(len(nodes))], dtype=np.int64)
    return roots, refused


# ----------------------------------------------------------------------------------------------
# Persistent child keys
# ----------------------------------------------------------------------------------------------


def new_child_key(salt: str, anchor: str, taken: set[str] | frozenset[str]) -> str:
    counter = 0
    while True:
        digest = hashlib.sha256(f"c2c/child_key/v1\x1f{salt}\x1f{anchor}\x1f{counter}".encode()).hexdigest()
        key = KEY_PREFIX + digest[:32]
        if key not in taken:
            return key
        counter += 1


@dataclass(frozen=True)
class KeyAssignment:
    crosswalk: pd.DataFrame  # the state's crosswalk (every source key ever seen)
    child_keys: pd.DataFrame  # the state's child_keys table
    history: pd.DataFrame  # this run's rows: run_id, seq, event, old_keys, new_keys, reason, source_keys
    current: pd.DataFrame  # source_key, agency, child_key for this run's source keys
    counts: dict[str, int]


def _resolve(key: str | None, successor: dict[str, str]) -> str | None:
    seen = set()
    while key is not None and key in successor and key not in seen:
        seen.add(key)
        key = successor[key]
    return key


def _current_rows(labels: pd.DataFrame, prev: pd.DataFrame, successor: dict[str, str], *, run_id: str,
                  seq: int) -> pd.DataFrame:
    """This run's source keys with their cluster, their previous key (resolved through retirements) and first sighting."""
    cur = labels[["source_key", "agency", "cluster"]].copy()
    cur["source_key"] = cur.source_key.astype(str)
    old_key = prev["child_key"].reindex(cur.source_key).to_numpy(dtype=object) if len(prev) else np.full(len(cur), None, dtype=object)
    cur["old_key"] = [_resolve(k, successor) if isinstance(k, str) else None for k in old_key]
    fs = prev["first_seen_seq"].reindex(cur.source_key).to_numpy() if len(prev) else np.full(len(cur), np.nan)
    cur["first_seen_seq"] = np.where(pd.isna(fs), seq, fs).astype(np.int64)
    fr = prev["first_seen_run"].reindex(cur.source_key).to_numpy(dtype=object) if len(prev) else np.full(len(cur), None, dtype=object)
    cur["first_seen_run"] = np.where(pd.isna(fr), run_id, fr)
    return cur


def _heirs(cur: pd.DataFrame) -> dict[str, int]:
    """The heir cluster of each old key: most of its source keys, then the earliest seen, then the smallest."""
    had = cur[cur.old_key.notna()]
    if not len(had):
        return {}
    g = had.groupby(["old_key", "cluster"]).agg(n=("source_key", "size"), s=("first_seen_seq", "min"),
                                                 k=("source_key", "min")).reset_index()
    g = g.sort_values(["old_key", "n", "s", "k"], ascending=[True, False, True, True], kind="stable")
    top = g.drop_duplicates("old_key")
    return dict(zip(top.old_key, top.cluster, strict=True))


@dataclass(frozen=True)
class _ClusterKeys:
    cluster_key: dict[int, str]
    new_keys: list[str]
    retired: dict[str, str]  # retired key -> its successor
    merges: list[tuple[list[str], str, int]]  # (old keys, the key kept, source keys)


def _cluster_keys(cur: pd.DataFrame, heir: dict[str, int], keys: pd.DataFrame, salt: str) -> _ClusterKeys:
    """Each cluster's key: a new one, its one inherited key, or (a merge) the inherited key most of it carried.
    ``cur`` is sorted by cluster, first sighting and source key."""
    anchor = cur.drop_duplicates("cluster").set_index("cluster").source_key.sort_index()
    heirs_of: dict[int, list[str]] = {}
    for k, c in heir.items():
        heirs_of.setdefault(int(c), []).append(k)
    taken: set[str] = set(keys.child_key.astype(str)) if len(keys) else set()
    out = _ClusterKeys({}, [], {}, [])
    inherited_rows = cur[cur.old_key.notna()]
    first_with_key = inherited_rows.drop_duplicates(["cluster", "old_key"])  # already sorted by seen, key
    multi = [c for c, hs in heirs_of.items() if len(hs) > 1]
    first_with_key = first_with_key[first_with_key.cluster.isin(multi)]
    inherited_rows = inherited_rows[inherited_rows.cluster.isin(multi)]
    cluster_size = cur.cluster.value_counts()
    for c, anchor_key in zip(anchor.index.tolist(), anchor.tolist(), strict=True):
        hs = heirs_of.get(int(c), [])
        if not hs:
            key = new_child_key(salt, anchor_key, taken)
            taken.add(key)
            out.new_keys.append(key)
        elif len(hs) == 1:
            key = hs[0]
        else:
            cand = first_with_key[(first_with_key.cluster == c) & first_with_key.old_key.isin(hs)].copy()
            sizes = inherited_rows[inherited_rows.cluster == c].old_key.value_counts()
            cand["n"] = -sizes.reindex(cand.old_key).to_numpy()
            cand = cand.sort_values(["n", "first_seen_seq", "source_key"], kind="stable")
            key = str(cand.old_key.iloc[0])
            for other in sorted(hs):
                if other != key:
                    out.retired[other] = key
            out.merges.append((sorted(hs), key, int(cluster_size[c])))
        out.cluster_key[int(c)] = key
    return out


def _splits(with_old: pd.DataFrame, heir: dict[str, int], cluster_key: dict[int, str]) -> list[tuple[str, list[str], int]]:
    """An old key whose present source keys now carry several keys: (old key, the keys now, source keys moved)."""
    splits = []
    if len(with_old):
        spread = with_old.groupby("old_key").child_key.nunique()
        split_keys = spread[spread > 1].index
        sub = with_old[with_old.old_key.isin(split_keys)]
        for k, grp in sub.groupby("old_key", sort=True):
            dest = sorted(set(grp.child_key))
            n = int((grp.child_key != heir_key(k, heir, cluster_key)).sum())
            splits.append((k, dest, n))
    return splits


def _history(ck: _ClusterKeys, splits: list[tuple[str, list[str], int]], with_old: pd.DataFrame, heir: dict[str, int],
             decided_pairs: Iterable[tuple[str, str, str]], *, run_id: str, seq: int) -> pd.DataFrame:
    """This run's merges and splits, each a reviewer's (``review_decision``) or the model's (``linkage``)."""
    decided = {(min(a, b), max(a, b)): d for a, b, d in decided_pairs}

    def reason_for(sks_a: set[str], sks_b: set[str], decision: str) -> str:
        for (a, b), d in decided.items():
            if d == decision and ((a in sks_a and b in sks_b) or (a in sks_b and b in sks_a)):
                return "review_decision"
        return "linkage"

    history = []
    involved = {k for olds, _, _ in ck.merges for k in olds}
    by_old = with_old[with_old.old_key.isin(involved)].groupby("old_key").source_key.agg(set).to_dict()
    for olds, key, n in ck.merges:
        members_key = by_old.get(key, set())
        others = set().union(*[by_old.get(o, set()) for o in olds if o != key])
        history.append({"event": "merge", "old_keys": olds, "new_keys": [key],
                        "reason": reason_for(members_key, others, "match"), "source_keys": n})
    for k, dest, n in splits:
        grp = with_old[with_old.old_key == k]
        mine = set(grp[grp.child_key == heir_key(k, heir, ck.cluster_key)].source_key)
        gone = set(grp[grp.child_key != heir_key(k, heir, ck.cluster_key)].source_key)
        history.append({"event": "split", "old_keys": [k], "new_keys": dest,
                        "reason": reason_for(mine, gone, "non_match"), "source_keys": n})
    hist = pd.DataFrame(history, columns=["event", "old_keys", "new_keys", "reason", "source_keys"])
    hist.insert(0, "seq", seq)
    hist.insert(0, "run_id", run_id)
    return hist


def _state_crosswalk(cur: pd.DataFrame, prev: pd.DataFrame, successor: dict[str, str], retired: dict[str, str],
                     run_id: str) -> pd.DataFrame:
    """The state's crosswalk: this run's source keys (active) and all earlier ones (inactive, keys resolved)."""
    now = cur.set_index("source_key")
    cw_new = pd.DataFrame({
        "source_key": now.index, "agency": now.agency.to_numpy(), "child_key": now.child_key.to_numpy(),
        "first_seen_run": now.first_seen_run.to_numpy(), "first_seen_seq": now.first_seen_seq.to_numpy(),
        "last_seen_run": run_id, "active": True,
    })
    if len(prev):
        gone_rows = prev[~prev.index.isin(now.index)].reset_index()
        gone_rows["child_key"] = [_resolve(k, {**successor, **retired}) for k in gone_rows.child_key]
        gone_rows["active"] = False
        crosswalk = pd.concat([cw_new, gone_rows[cw_new.columns]], ignore_index=True)
    else:
        crosswalk = cw_new
    return crosswalk.sort_values("source_key", kind="stable").reset_index(drop=True)


def _state_keys(keys: pd.DataFrame, ck: _ClusterKeys, *, run_id: str, seq: int) -> pd.DataFrame:
    """The state's child_keys: retirements, active/dormant status, and this run's new keys."""
    active_keys = set(ck.cluster_key.values())
    kt = keys.copy() if len(keys) else pd.DataFrame(columns=["child_key", "created_run", "created_seq", "status",
                                                            "successor", "updated_run"])
    kt = kt.set_index("child_key") if len(kt) else kt.set_index("child_key")
    for k, succ in ck.retired.items():
        kt.loc[k, ["status", "successor", "updated_run"]] = ["retired", succ, run_id]
    for k in kt.index[(kt.status != "retired")]:
        status = "active" if k in active_keys else "dormant"
        if kt.at[k, "status"] != status:
            kt.loc[k, ["status", "updated_run"]] = [status, run_id]
    if ck.new_keys:
        add = pd.DataFrame({"created_run": run_id, "created_seq": seq, "status": "active", "successor": None,
                            "updated_run": run_id}, index=pd.Index(ck.new_keys, name="child_key"))
        kt = pd.concat([kt, add])
    kt = kt.reset_index().rename(columns={"index": "child_key"}).sort_values("child_key", kind="stable")
    kt["created_seq"] = kt.created_seq.astype(np.int64)
    return kt.reset_index(drop=True)


def assign_child_keys(
    labels: pd.DataFrame,
    previous: pd.DataFrame,
    keys: pd.DataFrame,
    *,
    run_id: str,
    seq: int,
    salt: str,
    decided_pairs: Iterable[tuple[str, str, str]] = (),
) -> KeyAssignment:
    """Give this run's clusters child keys, continuing ``previous`` (see the module doc).

    ``labels``: source_key, agency, cluster. ``previous``/``keys``: the state's crosswalk and
    child_keys tables (empty on the first run). ``decided_pairs``: (source_key_l, source_key_r,
    decision) of the decisions applied, to tell a reviewer's merge or split from the model's.
    """
    successor = {}
    if len(keys):
        ret = keys[keys.status == "retired"]
        successor = dict(zip(ret.child_key.astype(str), ret.successor.astype(str), strict=True))
    prev = previous.set_index("source_key") if len(previous) else pd.DataFrame(
        columns=["agency", "child_key", "first_seen_run", "first_seen_seq", "last_seen_run", "active"])
    cur = _current_rows(labels, prev, successor, run_id=run_id, seq=seq)
    heir = _heirs(cur)
    # anchor (earliest seen, then smallest source key) of each cluster, and of each inherited key in it
    cur = cur.sort_values(["cluster", "first_seen_seq", "source_key"], kind="stable")
    ck = _cluster_keys(cur, heir, keys, salt)
    cur["child_key"] = cur.cluster.map(ck.cluster_key)
    with_old = cur[cur.old_key.notna()]
    splits = _splits(with_old, heir, ck.cluster_key)
    hist = _history(ck, splits, with_old, heir, decided_pairs, run_id=run_id, seq=seq)
    crosswalk = _state_crosswalk(cur, prev, successor, ck.retired, run_id)
    current = cur[["source_key", "agency", "child_key"]].sort_values("source_key", kind="stable").reset_index(drop=True)
    counts = {"child_keys_active": len(set(ck.cluster_key.values())), "child_keys_new": len(ck.new_keys),
              "merges": len(ck.merges), "splits": len(splits), "keys_retired": len(ck.retired),
              "source_keys_new": int((cur.first_seen_seq == seq).sum())}
    return KeyAssignment(crosswalk, _state_keys(keys, ck, run_id=run_id, seq=seq), hist, current, counts)


def heir_key(old: str, heir: dict[str, int], cluster_key: dict[int, str]) -> str:
    """The key the cluster inheriting ``old`` carries (``old`` itself unless merged into another)."""
    return cluster_key[int(heir[old])]
