"""JMeter CSV JTL: read in blocks of whole records, each parsed by polars into typed columns."""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np
import polars as pl

from environments.errors import InvalidInput
from environments.loadtests.readers.common import (
    _HEAD_BYTES,
    _JMETER_TYPES,
    JMETER_FIELDS,
    Timestamps,
    _bad,
    _epoch_ms,
    _first,
    _open,
    _samples,
)
from environments.loadtests.results import (
    ResultFormat,
    Samples,
)

BLOCK_BYTES = 8 << 20
"""How much of the file is parsed at a time (whole records)."""


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
