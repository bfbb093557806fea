"""The settings' two Bloom-filter similarities in each backend's SQL dialect (DuckDB, Spark).

The settings file writes ``dice(<bloom column>)`` and ``hamming(<bloom column>)``; these are their
expansions. DuckDB compares the filters as BIT strings; on Spark a filter is an array of 32-bit words
(:func:`data_sharing.linkage.backend.bloom_words_sql`) and the set bits are summed word by word.
"""

from __future__ import annotations

#: SQL dialects the settings' SQL is generated for (the linkage backends, :mod:`.backend`)
DIALECTS = ("duckdb", "spark")


def _bit_sum(op: str, lft: str, rgt: str, dialect: str) -> str:
    """Set bits of ``lft <op> rgt`` over two Bloom filters: DuckDB's BIT strings, or on Spark arrays of
    32-bit words (:func:`data_sharing.linkage.backend.bloom_words_sql`) summed word by word."""
    if dialect == "spark":
        return (f"aggregate(zip_with({lft}, {rgt}, (bw_x, bw_y) -> bit_count(bw_x {op} bw_y)), cast(0 as bigint), "
                f"(bw_acc, bw_v) -> bw_acc + bw_v)")
    if op == "&":
        return f"bit_count({lft}::BIT & {rgt}::BIT)"
    return f"bit_count(xor({lft}::BIT, {rgt}::BIT))"


def dice_expression(column: str, left: str = "{c}_l", right: str = "{c}_r", dialect: str = "duckdb") -> str:
    """SQL of the Dice similarity of two Bloom filters (NULL when either is NULL), in ``dialect``.

    Both dialects compute double(2 x common bits) / double(bits_l + bits_r): the same value to the bit."""
    lft, rgt = left.format(c=column), right.format(c=column)
    lb, rb = left.format(c=f"{column}_bits"), right.format(c=f"{column}_bits")
    if dialect == "spark":
        return f"(cast(2 * {_bit_sum('&', lft, rgt, dialect)} as double) / cast(nullif({lb} + {rb}, 0) as double))"
    return f"(2.0 * {_bit_sum('&', lft, rgt, dialect)} / nullif({lb} + {rb}, 0))"


def hamming_expression(column: str, left: str = "{c}_l", right: str = "{c}_r", dialect: str = "duckdb") -> str:
    """SQL of the number of bits in which two Bloom filters differ (NULL when either is NULL).

    Unlike Dice it does not shrink with the length of what else the filter holds: with equal surnames,
    the bits that differ in ``name_bloom`` are those of the first names' differing bigrams.
    """
    return _bit_sum("^" if dialect == "spark" else "xor", left.format(c=column), right.format(c=column), dialect)


__all__ = ["DIALECTS", "dice_expression", "hamming_expression"]
