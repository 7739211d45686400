"""Result file readers: JMeter JTL (CSV and XML) and Locust CSV, recognised by their content.

    read_result(path)          detects the format and returns Samples, AggregateReport or
                               LocustHistory (see results.py)
    detect_format(path)        the ResultFormat of a file, or InvalidInput saying what it is
    read_jmeter_csv(path)      Samples     read_jmeter_xml(path)      Samples
    read_locust_stats(path)    AggregateReport (Locust's own figures, passed through)
    read_locust_history(path)  LocustHistory

Every problem is an InvalidInput whose reason starts with the file's path and names the sample
(or line) and column at fault, in one line.

A CSV JTL is read in blocks of whole records (a record ends at a newline outside quotes), each
parsed by polars into typed columns, so memory stays near the size of the columns kept, whatever
the size of the file. JMeter's `sampleresult.timestamp.start=true` (its shipped default) makes
`timeStamp` the start of a sample; pass `timestamps="end"` for files written without it.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import re
import threading
from array import array
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any, Literal
from xml.etree import ElementTree

import numpy as np
import polars as pl

from environments.errors import InvalidInput
from environments.loadtests.results import (
    TOTAL,
    AggregateReport,
    Distribution,
    FloatArray,
    Int32Array,
    Int64Array,
    LabelStats,
    LocustHistory,
    Result,
    ResultFormat,
    Samples,
)

Timestamps = Literal["start", "end"]
BLOCK_BYTES = 8 << 20
_HEAD_BYTES = 64 << 10
MAX_LABEL = 2000
JMETER_FIELDS = frozenset(
    {
        *("timeStamp", "elapsed", "label", "responseCode", "responseMessage", "threadName"),
        *("dataType", "success", "failureMessage", "bytes", "sentBytes", "grpThreads"),
        *("allThreads", "URL", "Filename", "Latency", "Encoding", "SampleCount", "ErrorCount"),
        *("Hostname", "IdleTime", "Connect"),
    }
)
# The JMeter columns a report uses, and how polars parses them.
_JMETER_TYPES: dict[str, Any] = {
    "label": pl.Categorical,
    "success": pl.Boolean,
    "elapsed": pl.Int32,
    "timeStamp": pl.Int64,
    "bytes": pl.Int64,
    "Latency": pl.Int32,
    "SampleCount": pl.Int32,
    "ErrorCount": pl.Int32,
}
_TEXT_HINT = "report on a JMeter .jtl (CSV or XML) or a Locust *_stats.csv / *_stats_history.csv"
LOCUST_METHOD = (
    "Locust's own figures (its percentiles round response times over 100 ms "
    "to two significant digits)"
)


def _bad(path: str | os.PathLike[str], problem: str, hint: str = "") -> InvalidInput:
    return InvalidInput(f"{path}: {problem}", hint=hint)


def _open(path: str | os.PathLike[str]) -> io.BufferedReader:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except IsADirectoryError:
        raise _bad(path, "is a folder, not a result file") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror})") from None


def _head(path: str | os.PathLike[str]) -> str:
    with _open(path) as f:
        data = f.read(_HEAD_BYTES)
    return data.decode("utf-8", "replace").removeprefix("\ufeff")


def read_result(
    path: str | os.PathLike[str], *, latency: bool = False, timestamps: Timestamps = "start"
) -> Result:
    """Read any supported result file; `latency` also keeps JMeter's Latency column."""
    fmt = detect_format(path)
    if fmt is ResultFormat.JMETER_CSV:
        return read_jmeter_csv(path, latency=latency, timestamps=timestamps)
    if fmt is ResultFormat.JMETER_XML:
        return read_jmeter_xml(path, latency=latency, timestamps=timestamps)
    if fmt is ResultFormat.LOCUST_STATS:
        return read_locust_stats(path)
    return read_locust_history(path)


def read_samples(path: str | os.PathLike[str]) -> Samples:
    """A JTL (CSV or XML): one entry per request, as verdicts and time-series charts need."""
    result = read_result(path)
    if not isinstance(result, Samples):
        raise _bad(path, "holds aggregates, not one line per request", hint=_TEXT_HINT)
    return result


def detect_format(path: str | os.PathLike[str]) -> ResultFormat:
    """Recognise a result file by its first bytes: XML root element or CSV header fields."""
    head = _head(path)
    text = head.lstrip()
    if not text:
        raise _bad(path, "is empty", hint=_TEXT_HINT)
    if "\x00" in text[:4096] or "\ufffd" in text[:4096]:
        raise _bad(path, "is binary, not a text result file", hint=_TEXT_HINT)
    if text.startswith("<"):
        if "<!ENTITY" in text:
            # JMeter never declares entities; a file that does may be an expansion bomb.
            raise _bad(path, "declares XML entities, which JMeter results never do")
        root = _xml_root(text)
        if root == "testResults":
            return ResultFormat.JMETER_XML
        if root == "jmeterTestPlan":
            raise _bad(
                path,
                "is a JMeter test plan (.jmx), not results",
                hint="run it (jmeter -n -t PLAN -l results.jtl) and report on the .jtl",
            )
        raise _bad(path, f"is XML with root <{root}>, not JMeter results (<testResults>)")
    first = text.splitlines()[0]
    fields = set(next(csv.reader([first])))
    if {"Timestamp", "User Count", "Total Request Count"} <= fields:
        return ResultFormat.LOCUST_HISTORY
    if "Name" in fields and fields & {"Request Count", "# requests"}:
        return ResultFormat.LOCUST_STATS
    if {"Name", "Error", "Occurrences"} <= fields:
        raise _bad(path, "is Locust's failures list", hint="report on its *_stats.csv")
    separator = _separator(first)
    if len(set(_header_names(first, separator)) & JMETER_FIELDS) >= 2:
        return ResultFormat.JMETER_CSV
    if re.match(r"\s*\d{9,}[,;\t|]", first):
        raise _bad(
            path,
            "is a JMeter CSV without a header line",
            hint="save results with jmeter.save.saveservice.print_field_names=true",
        )
    raise _bad(
        path,
        f"is neither a JMeter result file nor a Locust CSV (first line: {first[:60]!a})",
        hint=_TEXT_HINT,
    )


def _xml_root(text: str) -> str:
    body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text, flags=re.S)
    found = re.search(r"<([A-Za-z_][\w.:-]*)", body)
    return found.group(1) if found else "?"


def _separator(header: str) -> str:
    """JMeter's `default_delimiter`: whichever of , TAB ; | splits out most JMeter names."""
    return max(
        (",", "\t", ";", "|"),
        key=lambda sep: len(set(_header_names(header, sep)) & JMETER_FIELDS),
    )


def _header_names(header: str, separator: str) -> list[str]:
    return [name.strip().strip('"') for name in header.rstrip("\r\n").split(separator)]


# --- JMeter CSV ------------------------------------------------------------------------------


def read_jmeter_csv(
    path: str | os.PathLike[str], *, latency: bool = False, timestamps: Timestamps = "start"
) -> Samples:
    """A CSV JTL with a header line: any column order, optional columns, any JMeter delimiter."""
    with _open(path) as f:
        header = f.readline().decode("utf-8", "replace").removeprefix("\ufeff")
        separator = _separator(header)
        names = _header_names(header, separator)
        position = {name: i for i, name in reversed(list(enumerate(names)))}
        for required in ("label", "success"):
            if required not in position:
                raise _bad(
                    path,
                    f"has no {required} column (columns: {', '.join(names)})",
                    hint=f"save results with jmeter.save.saveservice.{_SAVE_KEY[required]}=true",
                )
        keep = [c for c in _JMETER_TYPES if c in position and (latency or c != "Latency")]
        try:
            labels, columns = _CsvBlocks(path, f, names, position, keep, separator).read()
        except OSError as exc:
            raise _bad(path, f"cannot be read ({exc.strerror or exc})") from None
    codes = columns.pop("label")
    return _samples(path, ResultFormat.JMETER_CSV, labels, codes, columns, timestamps)


_SAVE_KEY = {"label": "label", "success": "successful"}
_NUMPY_TYPES: dict[str, Any] = {
    "label": np.int32,
    "success": np.bool_,
    "elapsed": np.int32,
    "timeStamp": np.int64,
    "bytes": np.int64,
    "Latency": np.int32,
    "SampleCount": np.int32,
    "ErrorCount": np.int32,
}


class _CsvBlocks:
    """Parses a CSV JTL block by block into numpy columns (labels as codes)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        stream: io.BufferedReader,
        names: list[str],
        position: dict[str, int],
        keep: list[str],
        separator: str,
    ) -> None:
        self.path, self.stream, self.names, self.separator = path, stream, names, separator
        self.position = position
        self.keep = sorted(keep, key=position.__getitem__)
        self.types: dict[str, Any] = {c: _JMETER_TYPES[c] for c in keep}
        self.rows = 0
        self.dated = False
        self.codes: dict[str, int] = {}  # label → code, in order of first appearance
        self.columns: dict[str, Any] = {c: np.empty(0, dtype=_NUMPY_TYPES[c]) for c in keep}

    def read(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        """Labels in order of first appearance, and each kept column as a numpy array."""
        blocks = _prefetched(_records(self.stream, BLOCK_BYTES))
        try:
            self._fill(blocks)
        finally:
            blocks.close()  # stops the reading thread at once, even after an error
        return tuple(self.codes), {c: a[: self.rows] for c, a in self.columns.items()}

    def _fill(self, blocks: Iterator[bytes]) -> None:
        """Columns sized from the first block's bytes per row, grown only if that was short."""
        size, consumed = os.fstat(self.stream.fileno()).st_size, 0
        for number, block in enumerate(blocks):
            if number == 0 and "timeStamp" in self.types:
                self._choose_timestamp_type(block)
            frame = self._parse(block)
            rows, end = self.rows, self.rows + frame.height
            consumed += len(block)
            if end > len(self.columns["label"]):
                capacity = max(end, int(end * size / consumed * 1.05) + 1024)
                self.columns = {c: _grown(a, rows, capacity) for c, a in self.columns.items()}
            for column in self.keep:
                series = frame.get_column(column)
                self.columns[column][rows:end] = (
                    self._label_codes(series) if column == "label" else series.to_numpy()
                )
            self.rows = end

    def _label_codes(self, labels: pl.Series) -> Any:
        """Codes in order of first appearance over the whole file.

        Mapped through each block's own categories, since physical ids are not stable across
        reads (polars 1 gives every read its own categories).
        """
        seen = labels.unique(maintain_order=True)
        ids = seen.to_physical().to_numpy()
        lookup = np.zeros(int(ids.max()) + 1 if len(ids) else 1, dtype=np.int32)
        lookup[ids] = [
            self.codes.setdefault(name, len(self.codes)) for name in seen.cast(pl.String).to_list()
        ]
        return lookup[labels.to_physical().to_numpy()]

    def _schema(self, text_only: bool = False) -> dict[str, Any]:
        kept = {self.position[c]: c for c in self.keep}
        return {
            f"c{i}": (pl.String if text_only or i not in kept else self.types[kept[i]])
            for i in range(len(self.names))
        }

    def _parse(self, block: bytes, text_only: bool = False) -> pl.DataFrame:
        try:
            frame = pl.read_csv(
                block,
                has_header=False,
                schema=self._schema(text_only),
                columns=[self.position[c] for c in self.keep],
                separator=self.separator,
                encoding="utf8-lossy",
            )
        except pl.exceptions.PolarsError as exc:
            if text_only:
                where = f"after sample {self.rows}"
                raise _bad(self.path, f"is not CSV {where}: {_first(exc)}") from None
            raise self._diagnose(block, exc) from None
        frame.columns = self.keep
        if self.dated and not text_only:
            frame = frame.with_columns(_epoch_ms(self.path, frame.get_column("timeStamp")))
        return frame if text_only else self._checked(frame)

    def _checked(self, frame: pl.DataFrame) -> pl.DataFrame:
        for column in self.keep:
            series = frame.get_column(column)
            if not series.null_count():
                continue
            if column == "label":
                frame = frame.with_columns(series.fill_null(""))
                continue
            row = self.rows + int(series.is_null().arg_true()[0]) + 1
            raise _bad(self.path, f"sample {row} has no {column} (is the file cut short?)")
        return frame

    def _choose_timestamp_type(self, block: bytes) -> None:
        """Millisecond numbers (JMeter's default) or dates (`timestamp_format` set)."""
        head = block[: _record_end(block[:_HEAD_BYTES]) or len(block)]
        stamps = self._parse(head, text_only=True).get_column("timeStamp").drop_nulls()
        if len(stamps) and not stamps.str.contains(r"^\s*-?\d+\s*$").all():
            self.types["timeStamp"] = pl.String
            self.dated = True

    def _diagnose(self, block: bytes, exc: Exception) -> InvalidInput:
        """Find the first value polars could not take, to name its sample and column."""
        frame = self._parse(block, text_only=True)
        for column, dtype in self.types.items():
            if dtype in (pl.String, pl.Categorical):
                continue
            values = frame.get_column(column)
            if dtype == pl.Boolean:
                wrong = ~values.str.to_lowercase().is_in(["true", "false"]) & values.is_not_null()
                what = "not true or false"
            else:
                parsed = values.str.strip_chars().cast(dtype, strict=False)
                wrong = parsed.is_null() & values.is_not_null()
                what = "not a whole number"
            if wrong.any():
                index = int(wrong.arg_true()[0])
                return _bad(
                    self.path,
                    f"sample {self.rows + index + 1}: {column} is {values[index]!r}, {what}",
                )
        return _bad(self.path, f"cannot be read after sample {self.rows}: {_first(exc)}")


def _grown(column: Any, rows: int, capacity: int) -> Any:
    bigger = np.empty(capacity, dtype=column.dtype)
    bigger[:rows] = column[:rows]
    return bigger


def _record_end(data: bytes | bytearray, quotes_before: int = 0) -> int:
    """Where the last whole record in `data` ends: after a newline outside quotes (0: none).

    Quotes in a CSV field are doubled, so a newline is inside a quoted field exactly when an odd
    number of quote characters comes before it.
    """
    cut = data.rfind(b"\n")
    quotes = 0
    if cut > 0 and b'"' in data:  # numpy counts a block's quotes faster than bytes.count
        quotes = int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8, count=cut) == 34))
    odd = (quotes_before + quotes) % 2
    while cut >= 0 and odd:
        previous = data.rfind(b"\n", 0, cut)
        odd = (odd + data.count(b'"', previous + 1, cut)) % 2
        cut = previous
    return cut + 1


def _prefetched(blocks: Iterator[bytes]) -> Generator[bytes, None, None]:
    """Read and cut the next block on another thread while polars parses this one."""
    ready: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for block in blocks:
                offer(block)
            offer(None)
        except BaseException as exc:  # handed to the reading thread, which raises it
            offer(exc)

    worker = threading.Thread(target=produce, name="jtl-blocks", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _records(stream: io.BufferedReader, size: int) -> Iterator[bytes]:
    """Blocks of about `size` bytes, each a run of whole records."""
    buffer = bytearray(size)  # reused: only the block handed on is new memory
    view = memoryview(buffer)
    rest = b""
    while length := stream.readinto(buffer):
        block = view[:length]
        end = _record_end(buffer if length == size else bytes(block), rest.count(b'"'))
        if not end:
            rest += block
            continue
        yield b"".join((rest, block[:end]))
        rest = bytes(block[end:])
    if rest.strip():
        yield rest if rest.endswith(b"\n") else rest + b"\n"


def _epoch_ms(path: str | os.PathLike[str], stamps: pl.Series) -> pl.Series:
    try:
        moments = stamps.str.strip_chars().str.to_datetime(strict=True, time_unit="ms")
    except (pl.exceptions.PolarsError, ValueError):
        sample = stamps.drop_nulls().head(1).to_list()
        raise _bad(
            path,
            f"timeStamp {sample[0] if sample else ''!r} is neither milliseconds nor a date "
            "and time I can read",
            hint="save results with jmeter.save.saveservice.timestamp_format=ms",
        ) from None
    return moments.dt.epoch("ms").alias("timeStamp")


def _first(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _samples(
    path: str | os.PathLike[str],
    fmt: ResultFormat,
    labels: tuple[str, ...],
    codes: Int32Array,
    columns: dict[str, Any],
    timestamps: Timestamps,
) -> Samples:
    """Samples from numpy columns named as JMeter's CSV header names them."""

    def numbers(name: str, dtype: type[np.generic]) -> Any:
        values = columns.get(name)
        return None if values is None else np.asarray(values).astype(dtype, copy=False)

    longest = max((len(label) for label in labels), default=0)
    if longest > MAX_LABEL:
        raise _bad(
            path,
            f"has a label of {longest:,} characters; a request's label is a short name",
            hint="the file is corrupt, or a column holds a response body",
        )
    elapsed = numbers("elapsed", np.int32)
    if elapsed is not None and bool((elapsed < 0).any()):
        row = int(np.argmax(elapsed < 0))
        raise _bad(
            path,
            f"has {int((elapsed < 0).sum()):,} sample(s) with a negative elapsed time "
            f"(the first is sample {row + 1})",
            hint="the file is corrupt or was edited; elapsed is milliseconds, 0 or more",
        )
    start = numbers("timeStamp", np.int64)
    if start is not None and elapsed is not None and timestamps == "end":
        start = start - elapsed
    sample_count = numbers("SampleCount", np.int32)
    error_count = numbers("ErrorCount", np.int32)
    if sample_count is None or bool((sample_count == 1).all()):
        sample_count = error_count = None  # no batch rows: `success` tells each error
    return Samples(
        source=str(path),
        format=fmt,
        labels=labels,
        label=codes,
        success=numbers("success", np.bool_),
        elapsed=elapsed,
        start=start,
        received_bytes=numbers("bytes", np.int64),
        latency=numbers("Latency", np.int32),
        sample_count=sample_count,
        error_count=error_count,
    )


# --- JMeter XML ------------------------------------------------------------------------------

# XML attribute → the CSV column it is saved as
_XML_ATTRIBUTES = {
    "t": "elapsed",
    "ts": "timeStamp",
    "by": "bytes",
    "lt": "Latency",
    "sc": "SampleCount",
    "ec": "ErrorCount",
}


def read_jmeter_xml(
    path: str | os.PathLike[str], *, latency: bool = False, timestamps: Timestamps = "start"
) -> Samples:
    """An XML JTL: the top-level <httpSample>/<sample> elements (sub-results are inside them)."""
    kept = [c for a, c in _XML_ATTRIBUTES.items() if latency or a != "lt"]
    values: dict[str, array[int]] = {column: array("q") for column in kept}
    present = dict.fromkeys(kept, 0)
    labels: dict[str, int] = {}
    codes, success = array("i"), array("b")
    depth, root = 0, None
    with _open(path) as stream:
        try:
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if depth == 1:
                        root = element
                        if element.tag != "testResults":
                            raise _bad(path, f"has root <{element.tag}>, not <testResults>")
                    continue
                depth -= 1
                if depth == 1 and element.tag in ("httpSample", "sample"):
                    _xml_sample(path, element.attrib, labels, codes, success, values, present)
                    element.clear()
                    if root is not None:
                        root.clear()
        except ElementTree.ParseError as exc:
            line, offset = exc.position
            raise _bad(path, f"line {line}, column {offset}: not well-formed XML") from None
    rows = len(codes)
    columns: dict[str, Any] = {"success": np.frombuffer(success, dtype=np.int8).astype(bool)}
    for name, found in present.items():
        if found and found < rows:
            raise _bad(path, f"only {found} of {rows} samples have {name}")
        if found:
            columns[name] = np.frombuffer(values[name], dtype=np.int64)
    return _samples(
        path,
        ResultFormat.JMETER_XML,
        tuple(labels),
        np.frombuffer(codes, dtype=np.int32),
        columns,
        timestamps,
    )


def _xml_sample(
    path: str | os.PathLike[str],
    attrs: dict[str, str],
    labels: dict[str, int],
    codes: array[int],
    success: array[int],
    values: dict[str, array[int]],
    present: dict[str, int],
) -> None:
    number = len(codes) + 1
    codes.append(labels.setdefault(attrs.get("lb", ""), len(labels)))
    flag = attrs.get("s")
    if flag not in ("true", "false"):
        raise _bad(path, f"sample {number}: s is {flag!r}, not true or false")
    success.append(flag == "true")
    for attribute, column in _XML_ATTRIBUTES.items():
        if column not in values:
            continue
        text = attrs.get(attribute)
        if text is None:
            values[column].append(0)
            continue
        present[column] += 1
        try:
            values[column].append(int(text))
        except ValueError:
            raise _bad(
                path, f"sample {number}: {attribute} is {text!r}, not a whole number"
            ) from None


# --- Locust ----------------------------------------------------------------------------------


def _locust_rows(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    with _open(path) as f:
        text = f.read().decode("utf-8", "replace").removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def _number(path: str | os.PathLike[str], row: int, column: str, text: str | None) -> float | None:
    if text is None or text.strip() in ("", "N/A"):
        return None
    try:
        return float(text)
    except ValueError:
        raise _bad(path, f"line {row}: {column} is {text!r}, not a number") from None


def _percent_columns(fields: list[str]) -> dict[float, str]:
    found = (re.fullmatch(r"\s*(\d+(?:\.\d+)?)%\s*", name) for name in fields)
    return {float(m.group(1)): m.group(0) for m in found if m}


def _locust_labels(rows: list[dict[str, str]], type_column: str) -> list[str]:
    """A request's name; with its type in front when one name has several types."""
    types: dict[str, set[str]] = {}
    for row in rows:
        types.setdefault(row.get("Name", ""), set()).add(row.get(type_column) or "")
    return [
        f"{row.get(type_column) or ''} {row.get('Name', '')}".strip()
        if len(types[row.get("Name", "")]) > 1
        else row.get("Name", "")
        for row in rows
    ]


def read_locust_stats(path: str | os.PathLike[str]) -> AggregateReport:
    """Locust's `*_stats.csv`: its aggregate rows, passed through as Locust computed them."""
    fields, rows = _locust_rows(path)
    count_col = "Request Count" if "Request Count" in fields else "# requests"
    fail_col = "Failure Count" if "Failure Count" in fields else "# failures"
    type_col = "Type" if "Type" in fields else "Method"
    percents = _percent_columns(fields)
    stats: list[LabelStats] = []
    total: LabelStats | None = None
    labels = _locust_labels(rows, type_col)
    for line, (row, label) in enumerate(zip(rows, labels, strict=True), 2):

        def value(column: str, row: dict[str, str] = row, line: int = line) -> float | None:
            return _number(path, line, column, row.get(column))

        samples = int(value(count_col) or 0)
        rate, size = value("Requests/s"), value("Average Content Size")
        table = {p: value(c) for p, c in percents.items()}
        table.setdefault(50.0, value("Median Response Time"))
        entry = LabelStats(
            label=label,
            samples=samples,
            errors=int(value(fail_col) or 0),
            response_time=Distribution(
                mean=value("Average Response Time"),
                min=value("Min Response Time"),
                max=value("Max Response Time"),
                percentiles=table,
            )
            if samples
            else None,
            throughput_per_sec=rate,
            received_kb_per_sec=None if rate is None or size is None else rate * size / 1024,
        )
        if row.get("Name") == "Aggregated" and not row.get(type_col):
            total = replace(entry, label=TOTAL)
        else:
            stats.append(entry)
    if total is None:
        raise _bad(path, "has no Aggregated row", hint="is the file complete?")
    return AggregateReport(
        source=str(path),
        format=ResultFormat.LOCUST_STATS,
        rows=tuple(stats),
        total=total,
        method=LOCUST_METHOD,
    )


def read_locust_history(path: str | os.PathLike[str]) -> LocustHistory:
    """Locust's `*_stats_history.csv` as columns."""
    fields, rows = _locust_rows(path)
    percents = _percent_columns(fields)
    labels = _locust_labels(rows, "Type")
    index: dict[str, int] = {}

    def column(name: str) -> FloatArray:
        return np.array(
            [
                np.nan if (v := _number(path, line, name, row.get(name))) is None else v
                for line, row in enumerate(rows, 2)
            ],
            dtype=np.float64,
        )

    def whole(name: str) -> Int64Array:
        return np.asarray(np.nan_to_num(column(name)), dtype=np.int64)

    return LocustHistory(
        source=str(path),
        label=np.array([index.setdefault(x, len(index)) for x in labels], dtype=np.int32),
        labels=tuple(index),
        timestamp=whole("Timestamp"),
        user_count=whole("User Count"),
        requests_per_sec=column("Requests/s"),
        failures_per_sec=column("Failures/s"),
        percentiles={p: column(name) for p, name in percents.items()},
        total_requests=whole("Total Request Count"),
        total_failures=whole("Total Failure Count"),
        total_median=column("Total Median Response Time"),
        total_mean=column("Total Average Response Time"),
        total_min=column("Total Min Response Time"),
        total_max=column("Total Max Response Time"),
        total_content_size=column("Total Average Content Size"),
    )
