"""A run's raw latency samples, per label, in time order: what verdicts and charts are built from.

Kept with the run in the record (`loadtest_samples`, one compressed numpy archive per run), so a
later run can be judged against it on another replica, after the run's folder is gone. A label
with more than `KEEP` samples keeps an evenly spaced subset in time order (its sample and error
counts stay exact): a 95th percentile's bootstrap needs thousands of samples, not millions.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from environments.loadtests.results import TOTAL, BoolArray, FloatArray, Int64Array, Samples

KEEP = 50_000
"""At most this many samples per label are kept (evenly spaced in time)."""


@dataclass(frozen=True, eq=False)
class LabelSamples:
    """One label's kept samples in time order: start (ms since the epoch), elapsed ms, success.

    `samples` and `errors` count every sample of the run, kept or not.
    """

    start: Int64Array
    elapsed: FloatArray
    success: BoolArray
    samples: int
    errors: int

    def __len__(self) -> int:
        return len(self.elapsed)

    @property
    def ok_elapsed(self) -> FloatArray:
        """Latencies of the successful samples: failures are judged by the error rate."""
        return self.elapsed[self.success]

    @property
    def successes(self) -> int:
        return self.samples - self.errors


@dataclass(frozen=True, eq=False)
class SampleSet:
    """Samples per label of one run (or of several baseline runs, concatenated in run order)."""

    labels: dict[str, LabelSamples]
    runs: tuple[int, ...] = ()
    per_run: tuple[SampleSet, ...] = ()
    """For a baseline of several runs: each run's own samples (their spread is run-to-run noise)."""

    def label(self, name: str) -> LabelSamples | None:
        if name == TOTAL:
            return self.total()
        return self.labels.get(name)

    def names(self) -> list[str]:
        """The request labels, then TOTAL."""
        return [*self.labels, TOTAL] if self.labels else []

    def total(self) -> LabelSamples:
        """All labels together, in time order."""
        parts = list(self.labels.values())
        if not parts:
            return _empty()
        start = np.concatenate([p.start for p in parts])
        order = np.argsort(start, kind="stable")
        return LabelSamples(
            start=start[order],
            elapsed=np.concatenate([p.elapsed for p in parts])[order],
            success=np.concatenate([p.success for p in parts])[order],
            samples=sum(p.samples for p in parts),
            errors=sum(p.errors for p in parts),
        )

    @classmethod
    def from_samples(cls, samples: Samples, *, keep: int = KEEP) -> SampleSet:
        """From an engine's samples (a JTL): each row is one sample (a batch row its mean)."""
        if samples.elapsed is None or samples.start is None:
            return cls({})
        elapsed = samples.elapsed.astype(np.float64)
        counts = samples.sample_count
        if counts is not None:
            elapsed = elapsed / np.maximum(counts, 1)
        row_errors = samples.row_errors()
        row_samples = (
            counts.astype(np.int64) if counts is not None else np.ones(len(samples), np.int64)
        )
        labels: dict[str, LabelSamples] = {}
        for code, name in enumerate(samples.labels):
            rows = np.flatnonzero(samples.label == code)
            if not len(rows):
                continue
            rows = rows[np.argsort(samples.start[rows], kind="stable")]
            labels[name] = _thinned(
                LabelSamples(
                    start=samples.start[rows].astype(np.int64),
                    elapsed=elapsed[rows],
                    success=samples.success[rows].astype(np.bool_),
                    samples=int(row_samples[rows].sum()),
                    errors=int(row_errors[rows].sum()),
                ),
                keep,
            )
        return cls(labels)

    @classmethod
    def combined(cls, sets: Iterable[tuple[int, SampleSet]]) -> SampleSet:
        """Several runs' samples as one set (a baseline), each label's runs one after another."""
        collected: dict[str, list[LabelSamples]] = {}
        runs: list[int] = []
        each: list[SampleSet] = []
        for run_id, one in sets:
            runs.append(run_id)
            each.append(one)
            for name, part in one.labels.items():
                collected.setdefault(name, []).append(part)
        joined = {name: _joined(parts) for name, parts in collected.items()}
        return cls(joined, tuple(runs), tuple(each))

    def to_bytes(self) -> bytes:
        """A compressed numpy archive (no pickles): label names, then columns by label code."""
        names = list(self.labels)
        parts = [self.labels[n] for n in names]
        origin = min((int(p.start[0]) for p in parts if len(p)), default=0)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            names=np.array(names, dtype=np.str_),
            origin=np.array([origin], dtype=np.int64),
            counts=np.array([[p.samples, p.errors] for p in parts], dtype=np.int64).reshape(-1, 2),
            code=_joined_column([np.full(len(p), i, np.int32) for i, p in enumerate(parts)]),
            start=_joined_column([(p.start - origin).astype(np.int32) for p in parts]),
            elapsed=_joined_column([p.elapsed.astype(np.float32) for p in parts]),
            success=_joined_column([p.success for p in parts]),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, run_id: int | None = None) -> SampleSet:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            names = [str(n) for n in archive["names"]]
            origin = int(archive["origin"][0])
            counts, code = archive["counts"], archive["code"]
            start, elapsed, success = archive["start"], archive["elapsed"], archive["success"]
        labels = {}
        for i, name in enumerate(names):
            rows = code == i
            labels[name] = LabelSamples(
                start=start[rows].astype(np.int64) + origin,
                elapsed=elapsed[rows].astype(np.float64),
                success=success[rows].astype(np.bool_),
                samples=int(counts[i][0]),
                errors=int(counts[i][1]),
            )
        return cls(labels, (run_id,) if run_id is not None else ())


def _joined_column(columns: list[Any]) -> Any:
    return np.concatenate(columns) if columns else np.zeros(0)


def _empty() -> LabelSamples:
    return LabelSamples(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.bool_), 0, 0)


def _thinned(part: LabelSamples, keep: int) -> LabelSamples:
    if len(part) <= keep:
        return part
    rows = np.linspace(0, len(part) - 1, keep).round().astype(np.int64)
    return LabelSamples(
        part.start[rows], part.elapsed[rows], part.success[rows], part.samples, part.errors
    )


def _joined(parts: list[LabelSamples]) -> LabelSamples:
    return LabelSamples(
        start=np.concatenate([p.start for p in parts]),
        elapsed=np.concatenate([p.elapsed for p in parts]),
        success=np.concatenate([p.success for p in parts]),
        samples=sum(p.samples for p in parts),
        errors=sum(p.errors for p in parts),
    )


def iter_labels(current: SampleSet, baseline: SampleSet) -> Iterator[str]:
    """Labels both sets have (in this run's order), then TOTAL."""
    for name in current.labels:
        if name in baseline.labels:
            yield name
    if current.labels and baseline.labels:
        yield TOTAL
