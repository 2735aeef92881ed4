"""optlab.data under faults (issue 10): slow and silent mirrors, file modes, unreadable files
and directories, things that are not files, and messages that say what to do."""

from __future__ import annotations

import http.server
import os
import stat
import threading
import time
from pathlib import Path

import pytest
import test_data
from test_data import GZ_NAMES, cache_listing

import optlab.data as data
from optlab.__main__ import main
from optlab.data import DataError, download_dataset, load_dataset, read_idx, verify_report

isolated = test_data.isolated  # autouse: no $OPTLAB_DATA_DIR, a private cache, no system copy
mirror = test_data.mirror  # a good file:// mirror of a tiny MNIST
tiny = test_data.tiny  # a valid tiny MNIST in tmp/data/mnist


def _run(args):
    try:
        return main(args)
    except SystemExit as e:
        return e.code


# --------------------------------------------------------------------------------------------
# A local HTTP mirror that trickles or says nothing (127.0.0.1, bounded, stops itself)
# --------------------------------------------------------------------------------------------


class _Server:
    """A threaded HTTP server on 127.0.0.1 whose handler is ``behaviour(handler)``; every
    request path is recorded. Used as a context manager: it is shut down on exit, and the
    behaviours end by themselves (bounded loops), so no thread outlives the test."""

    def __init__(self, behaviour):
        paths = self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                paths.append(self.path)
                try:
                    behaviour(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _trickle(handler):
    """Promise 10 kB, then send one byte every 0.2 s (at most 40)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "10000")
    handler.end_headers()
    for _ in range(40):
        handler.wfile.write(b"\x1f")
        handler.wfile.flush()
        time.sleep(0.2)


def _silent(handler):
    """Accept the request and say nothing for 3 s."""
    time.sleep(3)


def test_a_trickling_mirror_is_abandoned_by_its_throughput_and_named(mirror):
    url, _ = mirror
    with _Server(_trickle) as slow:
        t0 = time.monotonic()
        logged = []
        dest = download_dataset("mnist", mirrors=[slow.url, url], log=logged.append,
                                min_rate=1000, grace=0.5, deadline=30, timeout=5)
        took = time.monotonic() - t0
    assert took < 10, took  # was: forever
    assert cache_listing() == GZ_NAMES  # the good mirror served every file
    assert slow.paths == ["/train-images-idx3-ubyte.gz"]  # tried once, then skipped
    failed = [line for line in logged if "failed" in line]
    assert failed and f"mirror {slow.url} gave up: too slow" in failed[0]
    assert "below the minimum of 1,000 bytes/s" in failed[0]
    assert dest.exists()


def test_a_trickling_mirror_hits_the_deadline_per_file():
    with _Server(_trickle) as slow:
        t0 = time.monotonic()
        with pytest.raises(DataError) as err:
            download_dataset("mnist", mirrors=[slow.url], min_rate=0, deadline=1.0, timeout=5)
        took = time.monotonic() - t0
    msg = str(err.value)
    assert "\n" not in msg and took < 5, took
    assert f"mirror {slow.url} gave up: too slow" in msg and "past the 1 s allowed" in msg
    assert "train-images-idx3-ubyte.gz" in msg


def test_a_silent_mirror_costs_one_timeout_not_one_per_file():
    with _Server(_silent) as silent:
        t0 = time.monotonic()
        with pytest.raises(DataError) as err:
            download_dataset("mnist", mirrors=[silent.url], timeout=0.5)
        took = time.monotonic() - t0
    assert took < 3, took
    assert silent.paths == ["/train-images-idx3-ubyte.gz"]
    assert f"mirror {silent.url} gave up: no data for 0.5 s" in str(err.value)


def test_progress_is_counted_in_bytes(mirror, monkeypatch):
    url, _ = mirror
    seen = []

    class FakeBar:
        def __init__(self, total=None, unit=None, **kw):
            seen.append(("new", total, unit))
            self.n = 0

        def update(self, n):
            self.n += n

        def close(self):
            seen.append(("closed", self.n))

    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    download_dataset("mnist", mirrors=[url], progress=True)
    sizes = sorted(os.path.getsize(p) for p in data.cache_dir("mnist").iterdir())
    assert [s for s in seen if s[0] == "new"] == [("new", None, "B")] * 4  # file://: no length
    assert sorted(s[1] for s in seen if s[0] == "closed") == sizes


def test_ctrl_c_during_a_download_is_one_line_and_leaves_nothing(mirror, capsys):
    url, _ = mirror

    def interrupted(u, timeout):
        raise KeyboardInterrupt

    real = data._urlopen
    data._urlopen = interrupted
    try:
        rc = _run(["data", "download", "--mirror", "https://a.example/"])
    finally:
        data._urlopen = real
    err = capsys.readouterr().err.strip()
    assert rc == 130 and err == "python -m optlab data: interrupted"
    assert cache_listing() == []


# --------------------------------------------------------------------------------------------
# File modes and permissions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_downloaded_files_have_the_mode_of_an_ordinary_file(mirror, umask, mode):
    url, _ = mirror
    old = os.umask(umask)
    try:
        dest = download_dataset("mnist", mirrors=[url])
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in dest.iterdir()}
    assert modes == {mode}


def test_verify_calls_an_unreadable_intact_file_unreadable_not_damaged(tiny, monkeypatch):
    root, _, files = tiny
    locked = files["test_labels"]
    real_access = os.access
    monkeypatch.setattr(data.os, "access",
                        lambda p, m: False if Path(p) == locked else real_access(p, m))
    ok, lines = verify_report("mnist", root)
    assert not ok
    assert lines[-1] == "mnist: UNREADABLE"
    (line,) = [x for x in lines if locked.name in x]
    assert "UNREADABLE (permission denied" in line and f"chmod a+r {locked}" in line
    assert not any("DAMAGED" in x or "FAILED" in x for x in lines)


def test_a_directory_that_cannot_be_searched_is_reported_not_a_crash(tiny, monkeypatch,
                                                                     capsys):
    root, _, _ = tiny
    blocked = root / "mnist"
    real_stat = os.stat

    def stat_without_search_permission(path, *a, **kw):  # what a chmod 0600 directory does
        if str(path).startswith(str(blocked) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *a, **kw)

    monkeypatch.setattr(os, "stat", stat_without_search_permission)
    monkeypatch.setenv("OPTLAB_DATA_DIR", str(root))
    rc = _run(["data", "verify", "--dataset", "mnist"])
    out = capsys.readouterr().out
    monkeypatch.setattr(os, "stat", real_stat)
    assert rc == 2 and "Traceback" not in out
    assert f"{blocked} cannot be searched (permission denied)" in out


# --------------------------------------------------------------------------------------------
# Messages that say what is there and what to do
# --------------------------------------------------------------------------------------------


def test_a_directory_or_a_dangling_link_named_like_a_file_is_said_so(tiny):
    root, _, files = tiny
    labels = files["train_labels"]
    labels.unlink()
    labels.mkdir()  # a directory where the file should be
    images = files["test_images"]
    images.unlink()
    images.symlink_to(root / "gone.gz")  # a dangling link
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=root)
    msg = str(err.value)
    assert f"{labels} is a directory, not a file" in msg
    assert f"{images} is a dangling symbolic link (to {root / 'gone.gz'})" in msg
    assert "lacks train-labels" not in msg


def test_mirror_given_as_a_path(mirror, tmp_path, capsys):
    url, _ = mirror
    local = Path(url[len("file://"):])
    assert _run(["data", "download", "--mirror", str(local)]) == 0
    assert cache_listing() == GZ_NAMES
    rc = _run(["data", "download", "--mirror", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "not a URL (http://, https://, file://)" in err
    assert f"file://{tmp_path / 'nowhere'}/" in err


def test_read_idx_of_a_file_that_is_not_idx_gives_no_advice_to_delete_it(tmp_path):
    for name, content in (("hostname", b"myhost\n"), ("short", b"ab"), ("x.gz", b"plain")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError) as err:
            read_idx(path)
        msg = str(err.value)
        assert "\n" not in msg and "delete" not in msg and "original" not in msg, msg
        assert "IDX" in msg, msg


def test_data_command_errors_are_one_line(capsys):
    rc = _run(["data", "frobnicate"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "invalid choice: 'frobnicate'" in err


@pytest.mark.parametrize("args,fragment", [
    (["data", "verify", "--data-dir", ""], "--data-dir is empty"),
    (["data", "download", "--data-dir", " "], "--data-dir is empty"),
    (["data", "download", "--mirror", ""], "--mirror is empty"),
    (["compare", "--dataset", "mnist", "--data-dir", "", "--out", "never"], "--data-dir is empty"),
])
def test_an_empty_data_dir_or_mirror_is_refused_not_taken_as_the_current_directory(
        args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _run(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and fragment in err, err
    assert list(tmp_path.iterdir()) == []  # nothing created here (no ./mnist, no ./never)
