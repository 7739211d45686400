"""JMeter XML JTL: <testResults> of samples, nested samples counted as their parent does."""

from __future__ import annotations

import os
import re
from array import array
from typing import Any
from xml.etree import ElementTree

import numpy as np

from environments.loadtests.readers.common import (
    Timestamps,
    _bad,
    _open,
    _samples,
)
from environments.loadtests.results import (
    ResultFormat,
    Samples,
)


def _xml_root(text: str) -> str:
    body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text, flags=re.S)
    found = re.search(r"<([A-Za-z_][\w.:-]*)", body)
    return found.group(1) if found else "?"


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
