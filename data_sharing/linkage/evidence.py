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


def twin_evidence(con: Any, pairs_table: str) -> np.ndarray:
    """Per pair of ``pairs_table`` (ordered by a, b): either side's surname + birth date is held in one
    agency by two or more source keys under two or more first names."""
    sql = (
        "with g as (select last_name_hash as ln, birth_date_hash as bd from records "
        "where last_name_hash is not null and birth_date_hash is not null and first_name_hash is not null "
        "group by agency, last_name_hash, birth_date_hash "
        "having count(distinct first_name_hash) >= 2 and count(distinct source_key) >= 2), "
        "e as (select distinct ln, bd from g) "
        "select (el.ln is not null) or (er.ln is not null) "
        "from " + st.quote(pairs_table) + " p join records rl on rl.rid = p.rid_l join records rr on rr.rid = p.rid_r "
        "left join e el on el.ln = rl.last_name_hash and el.bd = rl.birth_date_hash "
        "left join e er on er.ln = rr.last_name_hash and er.bd = rr.birth_date_hash order by p.a, p.b"
    )
    rows = con.execute(sql).fetchnumpy()
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
