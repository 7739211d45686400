"""Result readers against JMeter's own result files and against files with known contents."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from environments.errors import InvalidInput
from environments.loadtests.readers import detect_format, jtl_csv, read_result
from environments.loadtests.results import AggregateReport, LocustHistory, ResultFormat, Samples
from tests.reference import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
JMETER = REFERENCE / "jmeter"
RESULT_FILES = {
    "BatchTestLocal.csv": (ResultFormat.JMETER_CSV, 132, 58),
    "HTMLReportFalseTestFile.csv": (ResultFormat.JMETER_CSV, 50, 1),
    "HTMLReportTestFile.csv": (ResultFormat.JMETER_CSV, 255, 2),
    "sample_log1c.jtl": (ResultFormat.JMETER_XML, 2000, 2),
}
HEADER = (
    "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,"
    "failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect"
)


def samples(path: Path, **options: object) -> Samples:
    result = read_result(path, **options)  # type: ignore[arg-type]
    assert isinstance(result, Samples)
    return result


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# --- JMeter's own files ----------------------------------------------------------------------


def test_every_reference_file_is_either_read_or_refused_in_one_line() -> None:
    files = sorted(JMETER.iterdir())
    assert len(files) == 7, "the reference folder changed: update RESULT_FILES"
    for path in files:
        if path.suffix == ".jmx":
            with pytest.raises(InvalidInput) as refused:
                read_result(path)
            assert refused.value.one_line().startswith(f"{path}: is a JMeter test plan")
            assert "\n" not in refused.value.one_line()
            continue
        fmt, rows, labels = RESULT_FILES[path.name]
        result = samples(path)
        assert (result.format, len(result), len(result.labels)) == (fmt, rows, labels)


@pytest.mark.parametrize("name", ["HTMLReportTestFile.csv", "HTMLReportFalseTestFile.csv"])
def test_a_csv_jtl_reads_exactly_what_the_csv_module_reads(name: str) -> None:
    path = JMETER / name
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    result = samples(path, latency=True)
    assert [result.labels[c] for c in result.label] == [r["label"] for r in rows]
    assert result.elapsed is not None and result.start is not None
    assert result.received_bytes is not None and result.latency is not None
    assert result.elapsed.tolist() == [int(r["elapsed"]) for r in rows]
    assert result.start.tolist() == [int(r["timeStamp"]) for r in rows]
    assert result.received_bytes.tolist() == [int(r["bytes"]) for r in rows]
    assert result.latency.tolist() == [int(r["Latency"]) for r in rows]
    assert result.success.tolist() == [r["success"] == "true" for r in rows]


def test_non_ascii_labels_and_all_failed_samples() -> None:
    result = samples(JMETER / "HTMLReportFalseTestFile.csv")
    assert result.labels == ("Requête HTTP",)
    assert not result.success.any()


def test_success_is_the_truth_whatever_the_response_code() -> None:
    # JR-KO samples answered 400 and failed; JR-OK answered 200 and passed.
    result = samples(JMETER / "HTMLReportTestFile.csv")
    failed = {result.labels[c] for c in result.label[~result.success]}
    assert failed == {"JR-KO"}
    assert int((~result.success).sum()) == 3


def test_a_file_without_time_columns_reads_with_none_for_them() -> None:
    result = samples(JMETER / "BatchTestLocal.csv")
    assert result.elapsed is None and result.start is None
    assert result.received_bytes is not None
    assert result.sample_count is None  # every SampleCount is 1: no batch rows
    assert int((~result.success).sum()) == 16
    assert result.labels[:3] == ("Setup 1", "Java 1 C1=1", "Loop5 C1=1 C2=1 C3=1")


def test_the_xml_jtl_reads_every_top_level_sample() -> None:
    path = JMETER / "sample_log1c.jtl"
    tree = ElementTree.parse(path)
    expected = [e.attrib for e in tree.getroot() if e.tag in ("httpSample", "sample")]
    result = samples(path, latency=True)
    assert result.format is ResultFormat.JMETER_XML
    assert [result.labels[c] for c in result.label] == [a["lb"] for a in expected]
    assert result.elapsed is not None and result.start is not None and result.latency is not None
    assert result.elapsed.tolist() == [int(a["t"]) for a in expected]
    assert result.start.tolist() == [int(a["ts"]) for a in expected]
    assert result.latency.tolist() == [int(a["lt"]) for a in expected]
    assert result.received_bytes is None  # this old file has no `by`


def test_sub_results_inside_an_xml_sample_are_not_samples(tmp_path: Path) -> None:
    text = (
        '<testResults><httpSample t="5" ts="1" s="true" lb="page">'
        '<httpSample t="2" ts="1" s="false" lb="image"/></httpSample>'
        '<sample t="7" ts="3" s="false" lb="tx"><assertionResult/></sample></testResults>'
    )
    result = samples(write(tmp_path, "nested.jtl", text))
    assert result.labels == ("page", "tx")
    assert result.success.tolist() == [True, False]


# --- generated CSV JTLs -----------------------------------------------------------------------

AWKWARD = (
    "success\tlabel\telapsed\tresponseCode\tfailureMessage\ttimeStamp\tbytes\n"
    'true\tLoginDeviceId\t120\t500\t"accepted by an assertion"\t1700000000000\t10\n'
    'false\tログイン画面\t80\t200\t"expected ""ok"",\tgot\nsomething\r\nelse"\t1700000000050\t20\n'
    "true\tLoginDeviceId\t95\t200\t\t1700000000100\t30\n"
    'false\t"GET /a, b"\t300\t503\t"two\n\nblank lines"\t1700000000110\t40\n'
)


def test_a_tab_separated_jtl_in_any_column_order_with_multiline_messages(tmp_path: Path) -> None:
    result = samples(write(tmp_path, "awkward.jtl", AWKWARD))
    assert result.labels == ("LoginDeviceId", "ログイン画面", "GET /a, b")
    assert result.label.tolist() == [0, 1, 0, 2]
    assert result.success.tolist() == [True, False, True, False]  # the 500 was a success
    assert result.elapsed is not None and result.elapsed.tolist() == [120, 80, 95, 300]
    assert result.start is not None and result.start.tolist()[-1] == 1700000000110
    assert result.received_bytes is not None and result.received_bytes.tolist() == [10, 20, 30, 40]


@pytest.mark.parametrize("block", [7, 16, 33, 64, 100])
def test_blocks_cut_anywhere_read_the_same(
    tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, body = AWKWARD.split("\n", 1)
    path = write(tmp_path, "awkward.jtl", header + "\n" + body * 5)
    whole = samples(path)
    monkeypatch.setattr(jtl_csv, "BLOCK_BYTES", block)
    cut = samples(path)
    assert cut.labels == whole.labels
    for column in ("label", "success", "elapsed", "start", "received_bytes"):
        assert np.array_equal(getattr(cut, column), getattr(whole, column)), column


def test_a_bad_value_deep_in_the_file_names_its_sample_and_stops_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"a,{i},true" for i in range(5000)]
    rows[4321] = "a,12.5,true"
    path = write(tmp_path, "deep.csv", "label,elapsed,success\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(jtl_csv, "BLOCK_BYTES", 1024)
    threads = threading.active_count()
    with pytest.raises(InvalidInput, match=r"sample 4322: elapsed is '12.5', not a whole number"):
        read_result(path)
    assert threading.active_count() == threads


def test_a_header_alone_is_a_run_without_samples(tmp_path: Path) -> None:
    result = samples(write(tmp_path, "none.csv", HEADER + "\n"))
    assert (len(result), result.labels) == (0, ())


def test_crlf_line_ends_a_byte_order_mark_and_no_trailing_newline(tmp_path: Path) -> None:
    text = "\ufefftimeStamp,elapsed,label,success\r\n1000,5,a,true\r\n1010,7,b,false"
    result = samples(write(tmp_path, "crlf.csv", text))
    assert result.labels == ("a", "b")
    assert result.elapsed is not None and result.elapsed.tolist() == [5, 7]


def test_optional_columns_may_be_missing(tmp_path: Path) -> None:
    result = samples(write(tmp_path, "few.csv", "label,success\na,true\nb,false\n"))
    assert (result.elapsed, result.start, result.received_bytes) == (None, None, None)
    assert result.success.tolist() == [True, False]


def test_timestamps_as_dates_and_as_end_times(tmp_path: Path) -> None:
    text = "timeStamp,elapsed,label,success\n2024/01/02 10:11:12.500,100,a,true\n"
    text += "2024/01/02 10:11:13.000,200,a,true\n"
    dated = samples(write(tmp_path, "dated.csv", text))
    assert dated.start is not None
    assert (dated.start[1] - dated.start[0]) == 500
    ended = samples(
        write(tmp_path, "end.csv", "timeStamp,elapsed,label,success\n1000,100,a,true\n")
    )
    assert ended.start is not None and ended.start.tolist() == [1000]
    ended = samples(tmp_path / "end.csv", timestamps="end")
    assert ended.start is not None and ended.start.tolist() == [900]


def test_batch_rows_keep_their_sample_and_error_counts(tmp_path: Path) -> None:
    text = "label,elapsed,success,SampleCount,ErrorCount\na,300,true,3,0\na,10,false,2,1\n"
    result = samples(write(tmp_path, "batch.csv", text))
    assert result.samples == 5 and len(result) == 2
    assert result.row_errors().tolist() == [0, 1]


def test_an_empty_label_is_a_label(tmp_path: Path) -> None:
    result = samples(write(tmp_path, "empty.csv", "label,success\n,true\nx,true\n"))
    assert result.labels == ("", "x")


# --- Locust -----------------------------------------------------------------------------------

LOCUST_PERCENTS = "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
LOCUST_STATS = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    f"Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    f"{LOCUST_PERCENTS}\n"
    "POST,/login,100,5,120,130.5,20,900,2048,10.0,0.5,120,140,150,160,200,250,400,600,900,900,900\n"
    "GET,/items,0,0,0,0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n"
    ",Aggregated,100,5,120,130.5,20,900,2048,10.0,0.5,120,140,150,160,200,250,400,600,900,900,900\n"
)
LOCUST_HISTORY = (
    f"Timestamp,User Count,Type,Name,Requests/s,Failures/s,{LOCUST_PERCENTS},"
    "Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size\n"
    "1700000000,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,"
    "0,0,0,0,0,0,0\n"
    "1700000001,5,GET,/items,4.000000,0.000000,"
    "10,10,10,10,20,20,20,20,20,20,20,4,0,10,12.5,8,20,512\n"
    "1700000001,5,,Aggregated,4.000000,0.000000,"
    "10,10,10,10,20,20,20,20,20,20,20,4,0,10,12.5,8,20,512\n"
    "1700000004,5,GET,/items,2.000000,1.000000,"
    "11,11,11,11,30,30,30,30,30,30,30,10,2,11,14.0,8,30,512\n"
    "1700000004,5,,Aggregated,2.000000,1.000000,"
    "11,11,11,11,30,30,30,30,30,30,30,10,2,11,14.0,8,30,512\n"
)


def test_locust_stats_are_the_engines_own_report(tmp_path: Path) -> None:
    report = read_result(write(tmp_path, "run_stats.csv", LOCUST_STATS))
    assert isinstance(report, AggregateReport)
    assert report.format is ResultFormat.LOCUST_STATS
    assert report.labels == ("/login", "/items")
    login = report.row("/login")
    assert (login.samples, login.errors, login.error_percent) == (100, 5, 5.0)
    assert login.response_time is not None
    assert login.response_time.mean == 130.5
    assert (login.percentile(50), login.percentile(95), login.percentile(99.9)) == (120, 250, 900)
    assert login.percentile(97) is None  # Locust does not report it
    assert login.throughput_per_sec == 10.0
    assert login.received_kb_per_sec == pytest.approx(10.0 * 2048 / 1024)
    assert report.row("/items").response_time is None
    assert report.total.samples == 100
    assert "Locust" in report.method


def test_locust_history_reads_as_columns(tmp_path: Path) -> None:
    history = read_result(write(tmp_path, "run_stats_history.csv", LOCUST_HISTORY))
    assert isinstance(history, LocustHistory)
    assert history.labels == ("Aggregated", "/items")
    assert history.timestamp.tolist() == [1_700_000_000 + s for s in (0, 1, 1, 4, 4)]
    assert np.isnan(history.percentiles[95.0][0])
    assert history.total_requests.tolist() == [0, 4, 4, 10, 10]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.jtl", HEADER + "\n", ResultFormat.JMETER_CSV),
        ("a.csv", "label\tsuccess\telapsed\n", ResultFormat.JMETER_CSV),
        ("a.xml", '<?xml version="1.0"?>\n<testResults version="1.2">\n', ResultFormat.JMETER_XML),
        ("s.csv", LOCUST_STATS, ResultFormat.LOCUST_STATS),
        ("h.csv", LOCUST_HISTORY, ResultFormat.LOCUST_HISTORY),
    ],
)
def test_the_format_comes_from_the_content(
    tmp_path: Path, name: str, text: str, expected: ResultFormat
) -> None:
    assert detect_format(write(tmp_path, name, text)) is expected


# --- files that cannot be read ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("empty.jtl", "", "is empty"),
        ("blank.jtl", "  \n\n", "is empty"),
        ("plan.jmx", '<?xml version="1.0"?>\n<jmeterTestPlan version="1.2"/>', "test plan"),
        ("other.xml", "<html><body/></html>", "not JMeter results"),
        (
            "nohead.csv",
            "1700000000000,12,a,200,OK,t,text,true,,1,1,1,1,u,1,0,0\n",
            "without a header",
        ),
        ("junk.csv", "hello,world\n1,2\n", "neither a JMeter result file nor a Locust CSV"),
        ("failures.csv", "Method,Name,Error,Occurrences\nGET,/,boom,1\n", "failures list"),
        ("nolabel.csv", "timeStamp,elapsed,success\n1,2,true\n", "has no label column"),
        ("nosuccess.csv", "timeStamp,elapsed,label\n1,2,a\n", "has no success column"),
        ("badelapsed.csv", "label,elapsed,success\na,1,true\na,12ms,true\n", "sample 2: elapsed"),
        ("badsuccess.csv", "label,elapsed,success\na,1,yes\n", "sample 1: success is 'yes'"),
        ("cut.csv", "label,elapsed,success\na,1,true\na,2\n", "sample 2 has no success"),
        ("baddate.csv", "timeStamp,label,success\nyesterday,a,true\n", "timeStamp 'yesterday'"),
        (
            "badattr.jtl",
            '<testResults><httpSample t="x" ts="1" s="true" lb="a"/></testResults>',
            "sample 1: t is 'x'",
        ),
        (
            "bads.jtl",
            '<testResults><httpSample t="1" ts="1" s="maybe" lb="a"/></testResults>',
            "s is 'maybe'",
        ),
        ("broken.jtl", '<testResults><httpSample t="1"</testResults>', "not well-formed XML"),
        ("missing.jtl", None, "no such file"),
    ],
)
def test_a_file_that_cannot_be_read_gets_one_line_naming_it(
    tmp_path: Path, name: str, text: str | None, problem: str
) -> None:
    path = tmp_path / name if text is None else write(tmp_path, name, text)
    with pytest.raises(InvalidInput) as refused:
        read_result(path)
    message = refused.value.one_line()
    assert message.startswith(f"{path}: "), message
    assert problem in message, message
    assert "\n" not in message


def test_a_folder_is_not_a_result_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is a folder"):
        read_result(tmp_path)
