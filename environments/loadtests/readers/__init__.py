"""Result file readers: JMeter JTL (CSV and XML) and Locust CSV, recognised by their content.

    read_result(path)          detects the format and returns Samples, AggregateReport or
                               LocustHistory (see results.py)
    detect_format(path)        the ResultFormat of a file, or InvalidInput saying what it is
    read_jmeter_csv(path)      Samples     read_jmeter_xml(path)      Samples
    read_locust_stats(path)    AggregateReport (Locust's own figures, passed through)
    read_locust_history(path)  LocustHistory

One module per format: `jtl_csv`, `jtl_xml`, `locust_csv`; `common` holds what they share
(opening a file, the one-line errors, turning JTL columns into Samples).

Every problem is an InvalidInput whose reason starts with the file's path and names the sample
(or line) and column at fault, in one line.

A CSV JTL is read in blocks of whole records (a record ends at a newline outside quotes), each
parsed by polars into typed columns, so memory stays near the size of the columns kept, whatever
the size of the file. JMeter's `sampleresult.timestamp.start=true` (its shipped default) makes
`timeStamp` the start of a sample; pass `timestamps="end"` for files written without it.
"""

from __future__ import annotations

import csv
import os
import re

from environments.loadtests.readers.common import (
    _TEXT_HINT,
    JMETER_FIELDS,
    Timestamps,
    _bad,
    _head,
)
from environments.loadtests.readers.jtl_csv import _header_names, _separator, read_jmeter_csv
from environments.loadtests.readers.jtl_xml import _xml_root, read_jmeter_xml
from environments.loadtests.readers.locust_csv import read_locust_history, read_locust_stats
from environments.loadtests.results import Result, ResultFormat, Samples

__all__ = [
    "detect_format",
    "read_jmeter_csv",
    "read_jmeter_xml",
    "read_locust_history",
    "read_locust_stats",
    "read_result",
    "read_samples",
]


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
