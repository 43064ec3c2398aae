"""Result tables: long-form (tidy) :class:`pandas.DataFrame` s, printed for a terminal and stored on disk.

Every experiment returns DataFrames with one row per measurement and one column per quantity,
so that ``groupby``, ``pivot_table`` and seaborn work on them as they are. This module only
builds, formats, writes and reads them:

- :func:`frame`: a DataFrame from rows with a fixed column order and a title (``df.attrs["title"]``).
- :func:`format_table`: aligned plain text for a terminal.
- :func:`write_table` / :func:`read_table`: ``<name>.csv`` and ``<name>.json`` (and
  ``<name>.parquet`` where pyarrow is importable), each written atomically.

Wall-clock columns (:data:`WALL_CLOCK_COLUMNS`: ``seconds``, ``wall_time``, ``ms``) are the only
ones that differ between two runs with the same seed. :func:`frame` puts them last and lists them
in ``df.attrs["wall_clock_columns"]`` (the JSON file lists them too), so that
``without_wall_clock(df)`` of two such runs is identical, byte for byte once written as CSV.
"""
import io
import json
import math
import numbers

import numpy as onp
import pandas as pd

from .._io import atomic_path, write_text

__all__ = ["WALL_CLOCK_COLUMNS", "frame", "format_table", "without_wall_clock", "wall_clock_columns",
           "write_table", "read_table", "table_to_json", "table_from_json", "parquet_available"]

#: Columns that hold measured time; everything else is determined by the configuration and the seed.
WALL_CLOCK_COLUMNS = ("seconds", "wall_time", "ms")

_FORMAT = "vi_lab.experiments.table"


def wall_clock_columns(df):
    """The wall-clock columns of ``df``, in its column order."""
    return [c for c in df.columns if c in WALL_CLOCK_COLUMNS]


def without_wall_clock(df):
    """``df`` without its wall-clock columns: the part that is the same for the same seed."""
    return df.drop(columns=wall_clock_columns(df))


def frame(rows=(), columns=None, title=""):
    """A DataFrame from a list of dict rows (or a dict of columns), wall-clock columns last.

    Parameters
    ----------
    rows : list of dict, dict of str -> sequence, or pandas.DataFrame
        One dict per row (missing keys become NaN/None), equal-length columns, or a DataFrame
        (its index is dropped).
    columns : list of str, optional
        Column order; default the keys in order of first appearance. Wall-clock columns
        (:data:`WALL_CLOCK_COLUMNS`) are moved to the end either way.
    title : str, optional
        Stored in ``df.attrs["title"]``; :func:`format_table` prints it.

    Returns
    -------
    pandas.DataFrame
    """
    if isinstance(rows, pd.DataFrame):
        df = rows.reset_index(drop=True)
        names = list(df.columns) if columns is None else list(columns)
    elif isinstance(rows, dict):
        lengths = {c: len(v) for c, v in rows.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns: expected equal lengths, got {lengths}")
        df = pd.DataFrame({c: list(v) if not isinstance(v, onp.ndarray) else v for c, v in rows.items()})
        names = list(rows) if columns is None else list(columns)
    else:
        rows = [dict(r) for r in rows]
        if columns is None:
            names = []
            for row in rows:
                names.extend(k for k in row if k not in names)
        else:
            names = list(columns)
        df = pd.DataFrame.from_records(rows, columns=names) if rows else pd.DataFrame(columns=names)
    names = [c for c in names if c not in WALL_CLOCK_COLUMNS] + [c for c in names if c in WALL_CLOCK_COLUMNS]
    df = df[names]
    df.attrs["title"] = title
    df.attrs["wall_clock_columns"] = wall_clock_columns(df)
    return df


# ---------------------------------------------------------------------------- terminal
def _is_missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _format(value, digits):
    if isinstance(value, onp.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0"
        mag = abs(value)
        if mag >= 10 ** (digits + 1) or mag < 10 ** -(digits - 1):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


def _numeric(series):
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def format_table(df, columns=None, digits=4, max_rows=None, title=None):
    """A DataFrame as aligned plain text: a title line, a header, a rule and one line per row.

    Parameters
    ----------
    df : pandas.DataFrame
    columns : list of str, optional
        Subset and order of columns (default: all).
    digits : int, default 4
        Significant digits of floats (scientific notation for very large or small values).
    max_rows : int, optional
        Show at most this many rows, then a line saying how many were left out.
    title : str, optional
        Default ``df.attrs["title"]`` (nothing if absent).

    Returns
    -------
    str
        Missing values (NaN, None) print as "-"; numbers are right-aligned, text left-aligned.
    """
    columns = list(df.columns if columns is None else columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"no column(s) {missing}; columns are {list(df.columns)}")
    shown = df if max_rows is None else df.iloc[:max_rows]
    cells = [[_format(v, digits) for v in shown[c].tolist()] for c in columns]
    widths = [max([len(c)] + [len(v) for v in col]) for c, col in zip(columns, cells)]
    numeric = [_numeric(df[c]) for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    title = df.attrs.get("title", "") if title is None else title
    out = [title] if title else []
    out.append(line(columns))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in zip(*cells))
    if max_rows is not None and len(df) > max_rows:
        out.append(f"... {len(df) - max_rows} more rows")
    return "\n".join(out)


# ---------------------------------------------------------------------------- disk
def _plain(value):
    if isinstance(value, onp.generic):
        value = value.item()
    if _is_missing(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"          # strict JSON has no Infinity; float_columns restores it
    return value


def table_to_json(df):
    """Strict JSON text ``{"format", "title", "columns", "float_columns", "wall_clock_columns", "rows"}``.

    NaN becomes null and +-inf the strings "inf"/"-inf" (strict JSON has neither); ``float_columns``
    restores both on reading.
    """
    rows = [{c: _plain(v) for c, v in zip(df.columns, values)} for values in df.itertuples(index=False, name=None)]
    obj = {"format": _FORMAT, "title": df.attrs.get("title", ""), "columns": [str(c) for c in df.columns],
           "float_columns": [str(c) for c in df.columns if df[c].dtype.kind == "f"],
           "wall_clock_columns": wall_clock_columns(df), "rows": rows}
    return json.dumps(obj, indent=1, allow_nan=False)


def table_from_json(text, source="table"):
    """Inverse of :func:`table_to_json` (``source`` names the file in error messages)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("rows"), list) or not isinstance(obj.get("columns"), list):
        raise ValueError(f"{source}: not a vi_lab table (expected an object with 'columns' and 'rows')")
    df = frame(obj["rows"], obj["columns"], obj.get("title", ""))
    for c in obj.get("float_columns", []):
        if c in df.columns:                 # a float column of nulls only would come back as objects
            df[c] = df[c].astype(float)
    return df


def parquet_available():
    """True when pyarrow is importable (``pip install -e '.[parquet]'``), so tables are also written as Parquet."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_table(df, stem):
    """Write ``<stem>.csv``, ``<stem>.json`` and, where pyarrow is importable, ``<stem>.parquet``.

    The CSV has a header row and floats at full (round-trip) precision; the JSON keeps the title
    and which columns are wall-clock time. Each file is written atomically.

    Returns
    -------
    list of str
        The paths written.
    """
    stem = str(stem)
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    write_text(stem + ".csv", buf.getvalue())
    write_text(stem + ".json", table_to_json(df) + "\n")
    paths = [stem + ".csv", stem + ".json"]
    if parquet_available():
        with atomic_path(stem + ".parquet") as tmp:
            df.to_parquet(tmp, index=False)
        paths.append(stem + ".parquet")
    return paths


def read_table(path):
    """Read a table written by :func:`write_table` (the ``.json``, ``.csv`` or ``.parquet`` file) as a DataFrame."""
    path = str(path)
    try:
        if path.endswith(".parquet"):
            df = pd.read_parquet(path)
            return frame(df.to_dict("records"), list(df.columns))
        if path.endswith(".csv"):
            df = pd.read_csv(path)
            return frame(df.to_dict("records"), list(df.columns))
        with open(path, encoding="utf-8") as fh:
            return table_from_json(fh.read(), path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the table ({exc.strerror or exc})") from None
