"""CSV cells a spreadsheet will not run: OWASP's rule against formula ("CSV") injection.

A reader's comment or a review note such as ``=HYPERLINK(...)`` or ``@SUM(...)`` is a formula
to Excel or LibreOffice once the export is opened; a text cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading single quote, so the spreadsheet shows
it as text. Numbers are left alone: a negative number is a number, not a formula. Rows end
in ``\r\n`` (:data:`CSV_LINE_END`), so the csv module quotes a text holding a lone ``\r``,
which a reader would otherwise take for the end of the row (a forged row after it).
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_LINE_END = "\r\n"


def csv_cell(value: Any) -> Any:
    """``value`` as it may go into a CSV cell: a text starting like a formula gets ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
