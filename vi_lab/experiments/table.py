"""A tidy table without pandas: one row per measurement, one column per quantity.

Every experiment returns a :class:`Table`. It is a thin list of dict rows with a fixed
column order, so it prints readably in a terminal, converts to CSV and JSON, and hands
its columns to NumPy (or to ``pandas.DataFrame(table.to_dicts())`` if you have pandas).
"""
import csv
import io
import json
import math
import numbers

import numpy as onp

from .._io import write_text

__all__ = ["Table"]


def _plain(value):
    """A JSON-friendly Python scalar: numpy scalars unwrapped, NaN and inf turned into None."""
    if isinstance(value, onp.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format(value, digits):
    if value is None:
        return "-"
    if isinstance(value, onp.generic):
        value = value.item()
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
        if value == 0:
            return "0"
        mag = abs(value)
        if mag >= 10 ** (digits + 1) or mag < 10 ** -(digits - 1):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


class Table:
    """An ordered list of rows sharing the same columns.

    Parameters
    ----------
    rows : list of dict
        One dict per row. Missing keys are filled with ``None``.
    columns : list of str, optional
        Column order. Default: the keys of the rows in order of first appearance.
    title : str, optional
        Printed above the table.

    Examples
    --------
    >>> t = Table([{"estimator": "a", "S": 1, "var": 2.0}, {"estimator": "b", "S": 1, "var": 0.5}])
    >>> t.column("var")
    array([2. , 0.5])
    >>> t.where(estimator="b").rows[0]["var"]
    0.5
    """

    def __init__(self, rows=(), columns=None, title=""):
        rows = [dict(r) for r in rows]
        if columns is None:
            columns = []
            for row in rows:
                columns.extend(k for k in row if k not in columns)
        self.columns = list(columns)
        self.rows = [{c: row.get(c) for c in self.columns} for row in rows]
        self.title = title

    @classmethod
    def from_columns(cls, columns, title=""):
        """Build a table from a dict of equal-length sequences (one per column)."""
        names = list(columns)
        lengths = {len(columns[c]) for c in names}
        if len(lengths) > 1:
            raise ValueError(f"columns: expected equal lengths, got {dict((c, len(columns[c])) for c in names)}")
        n = lengths.pop() if lengths else 0
        return cls([{c: _plain(columns[c][i]) for c in names} for i in range(n)], names, title)

    # ------------------------------------------------------------------ access
    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key):
        """``table["col"]`` is :meth:`column`; ``table[i]`` is row i as a dict."""
        if isinstance(key, str):
            return self.column(key)
        return self.rows[key]

    def __eq__(self, other):
        return isinstance(other, Table) and self.columns == other.columns and self.rows == other.rows

    def column(self, name):
        """Column ``name`` as a NumPy array (float where possible, else object)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns are {self.columns}")
        values = [r[name] for r in self.rows]
        try:
            return onp.array([onp.nan if v is None else v for v in values], dtype=float)
        except (TypeError, ValueError):
            return onp.array(values, dtype=object)

    def where(self, **conditions):
        """The rows whose columns equal the given values, as a new table."""
        rows = [r for r in self.rows if all(r.get(k) == v for k, v in conditions.items())]
        return Table(rows, self.columns, self.title)

    def unique(self, name):
        """Distinct values of a column in order of first appearance."""
        seen = []
        for r in self.rows:
            if r[name] not in seen:
                seen.append(r[name])
        return seen

    def select(self, columns):
        """A new table with only ``columns`` (in that order)."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise KeyError(f"no column(s) {missing}; columns are {self.columns}")
        return Table(self.rows, list(columns), self.title)

    def to_dicts(self):
        """The rows as a list of plain dicts (NaN and inf become None)."""
        return [{c: _plain(r[c]) for c in self.columns} for r in self.rows]

    # ------------------------------------------------------------------ output
    def to_csv(self, path=None):
        """CSV text with a header row; also written (atomically) to ``path`` if given."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else (repr(float(v)) if isinstance(v, (float, onp.floating)) else v)
                             for v in (row[c] for c in self.columns)])
        text = buf.getvalue()
        if path is not None:
            write_text(path, text)
        return text

    def to_json(self, path=None):
        """JSON text ``{"title", "columns", "rows"}`` (NaN/inf as null); also written atomically to ``path`` if given."""
        text = json.dumps({"title": self.title, "columns": self.columns, "rows": self.to_dicts()},
                          indent=1, allow_nan=False)
        if path is not None:
            write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text):
        """Inverse of :meth:`to_json` (text, not path)."""
        obj = json.loads(text)
        return cls(obj["rows"], obj["columns"], obj.get("title", ""))

    def format(self, columns=None, digits=4, max_rows=None):
        """The table as aligned plain text for a terminal.

        Parameters
        ----------
        columns : list of str, optional
            Subset and order of columns to show (default: all).
        digits : int, default 4
            Significant digits for floats.
        max_rows : int, optional
            Show at most this many rows, then a line saying how many were left out.
        """
        columns = list(self.columns if columns is None else columns)
        rows = self.rows if max_rows is None else self.rows[:max_rows]
        cells = [[_format(r.get(c), digits) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        numeric = [all(_is_number(r.get(c)) for r in rows) and rows != [] for c in columns]

        def line(values):
            return "  ".join(v.rjust(w) if num else v.ljust(w)
                             for v, w, num in zip(values, widths, numeric)).rstrip()

        out = [self.title] if self.title else []
        out.append(line(columns))
        out.append("  ".join("-" * w for w in widths))
        out.extend(line(row) for row in cells)
        if max_rows is not None and len(self.rows) > max_rows:
            out.append(f"... {len(self.rows) - max_rows} more rows")
        return "\n".join(out)

    def __str__(self):
        return self.format()

    def __repr__(self):
        return f"<Table {self.title!r}: {len(self.rows)} rows x {len(self.columns)} columns>\n{self.format(max_rows=20)}"

    def _repr_html_(self):
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{_format(r[c], 4)}</td>" for c in self.columns) + "</tr>"
                       for r in self.rows)
        caption = f"<caption>{self.title}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _is_number(value):
    return value is None or (isinstance(value, (numbers.Real, onp.generic)) and not isinstance(value, bool))
