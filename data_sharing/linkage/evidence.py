"""Evidence of two children behind a pair of records (issue 14), for guards that need it.

A pair with the same surname and birth date and two different first names across agencies is either
twins or one child written two ways (a middle name used as the first, an unlisted short form, a
transliteration). Twins are nearly always both known to some agency; one child written two ways is not
two ids of one agency with two names. :func:`twin_evidence` says, per pair, whether some agency holds
two or more ids with the pair's surname and birth date under two or more first names (keyed hashes only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_sharing.linkage import state as st
from data_sharing.linkage.settings import hamming_expression


#: Bits of ``name_bloom`` within which two first names of one surname are one typo apart (the
#: ``last_same_first_similar`` level's bound, ``schemas/linkage/settings.yaml``).
SIMILAR_FIRST_NAME_BITS = 130
#: A first name held by fewer of the run's source keys than this is not an established name: one typo
#: apart from another, it is that name misspelt (as ``similar_twins_within_agency`` reads it).
ESTABLISHED_NAME_SOURCE_KEYS = 2


def twin_evidence(con: Any, pairs_table: str) -> np.ndarray:
    """Per pair of ``pairs_table`` (ordered by a, b): either side's surname + birth date is held in one
    agency by two source keys under two first names that are two children's names: not a short form of
    the other (equal canonical forms), not the other's middle name, and not a misspelling of it (within
    :data:`SIMILAR_FIRST_NAME_BITS` while one of the two is held by fewer than
    :data:`ESTABLISHED_NAME_SOURCE_KEYS` source keys). One child re-registered under a misspelt name is
    not evidence of twins (issue 14: such evidence held that child's records at other agencies apart)."""
    have = {r[0] for r in con.execute("select column_name from (describe records)").fetchall()}
    # the tests that need a column the settings did not load are left out (they can only hold more)
    tests = ["a.fn <> b.fn"]
    params: list[int] = []
    if "first_name_canonical_hash" in have:
        tests.append("coalesce(a.first_name_canonical_hash <> b.first_name_canonical_hash, true)")
    if "middle_name_as_first_hash" in have:
        tests.append("coalesce(a.fn <> b.middle_name_as_first_hash and a.middle_name_as_first_hash <> b.fn, true)")
    if "name_bloom" in have:
        tests.append("not coalesce(" + hamming_expression("name_bloom", "a.name_bloom", "b.name_bloom")
                     + " <= ? and least(fa.n, fb.n) < ?, false)")
        params = [SIMILAR_FIRST_NAME_BITS, ESTABLISHED_NAME_SOURCE_KEYS]
    sql = (
        "with f as (select first_name_hash as v, count(distinct source_key) as n from records "
        "where first_name_hash is not null group by 1), "
        "k as (select *, first_name_hash as fn, last_name_hash as ln, birth_date_hash as bd from records "
        "where last_name_hash is not null and birth_date_hash is not null and first_name_hash is not null), "
        "e as (select distinct a.ln, a.bd from k a join k b on a.agency = b.agency and a.ln = b.ln "
        "and a.bd = b.bd and a.source_key < b.source_key join f fa on fa.v = a.fn join f fb on fb.v = b.fn "
        "where " + " and ".join(tests) + ") "
        "select (el.ln is not null) or (er.ln is not null) "
        "from " + st.quote(pairs_table) + " p join records rl on rl.rid = p.rid_l join records rr on rr.rid = p.rid_r "
        "left join e el on el.ln = rl.last_name_hash and el.bd = rl.birth_date_hash "
        "left join e er on er.ln = rr.last_name_hash and er.bd = rr.birth_date_hash order by p.a, p.b"
    )
    rows = con.execute(sql, params).fetchnumpy()
    return np.asarray(next(iter(rows.values())), dtype=bool)


def distinct_common(con: Any, pairs_table: str, column: str, min_source_keys: int) -> np.ndarray:
    """Per pair of ``pairs_table`` (ordered by a, b, as the pairs frame is): its best variants' values of
    ``column`` differ and each is held by at least ``min_source_keys`` of the run's source keys."""
    col = st.quote(column)
    sql = (
        "with f as (select " + col + " as v, count(distinct source_key) as n from records where " + col
        + " is not null group by 1) "
        "select coalesce(rl." + col + " <> rr." + col + " and fl.n >= ? and fr.n >= ?, false) "
        "from " + st.quote(pairs_table) + " p join records rl on rl.rid = p.rid_l join records rr on rr.rid = p.rid_r "
        "left join f fl on fl.v = rl." + col + " left join f fr on fr.v = rr." + col + " order by p.a, p.b"
    )
    rows = con.execute(sql, [min_source_keys, min_source_keys]).fetchnumpy()
    return np.asarray(next(iter(rows.values())), dtype=bool)
