"""stentrans.datasets.download against a real HTTP server on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import logging
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from stentrans import InputError
from stentrans.cli.data import register_cli
from stentrans.datasets import data_path, download, fetch, parse_locations

PAYLOAD = b"spot\tA\tB\n1x1\t3\t0\n2x1\t0\t5\n" * 2000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = "0" * 64


def _tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"spatial/tissue_positions_list.csv": b"a,1,0,0,1,1\n", "spatial/scalefactors_json.json": b"{}"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Server:
    """Serves fixed files; `/flaky/N/...` answers 500 N times, then 200."""

    def __init__(self):
        self.files = {"/data.tsv": PAYLOAD, "/sample_spatial.tar.gz": _tarball(), "/matrix.h5": b"HDF-ish"}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                with owner.lock:
                    n = owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                path = self.path
                if path.startswith("/flaky/"):
                    _, _, fails, rest = path.split("/", 3)
                    if n <= int(fails):
                        self.send_error(500, "try again")
                        return
                    path = "/" + rest
                if path.startswith("/always500/"):
                    self.send_error(503, "down")
                    return
                if path.startswith("/short/"):
                    body = owner.files["/" + path.split("/", 2)[2]]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body) + 100))
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                body = owner.files.get(path)
                if body is None:
                    self.send_error(404, "no such file")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_right_hash_gives_the_file(server, tmp_path):
    dest = tmp_path / "out" / "data.tsv"
    path = download(server.url("/data.tsv"), dest, sha256=SHA)
    assert path == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["data.tsv"]  # no temporary file left


def test_hash_is_case_insensitive_and_folder_destination(server, tmp_path):
    path = download(server.url("/data.tsv"), tmp_path, sha256=SHA.upper())
    assert path == tmp_path / "data.tsv"
    assert path.read_bytes() == PAYLOAD


def test_wrong_hash_fails_and_leaves_nothing(server, tmp_path):
    url = server.url("/data.tsv")
    dest = tmp_path / "dl" / "data.tsv"
    with pytest.raises(InputError) as err:
        download(url, dest, sha256=WRONG, retries=2, backoff=0)
    msg = str(err.value)
    assert "\n" not in msg
    assert url in msg and WRONG in msg and SHA in msg
    assert "mismatch" in msg
    assert not dest.exists()
    assert _leftovers(dest.parent) == []  # no partial or temporary file either
    assert server.hits["/data.tsv"] == 1  # a mismatch is not retried


def test_existing_file_with_the_right_hash_is_kept(server, tmp_path):
    dest = tmp_path / "data.tsv"
    dest.write_bytes(PAYLOAD)
    download(server.url("/data.tsv"), dest, sha256=SHA)
    assert "/data.tsv" not in server.hits


def test_server_error_then_success_is_retried(server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="stentrans.download")
    path = download(server.url("/flaky/1/data.tsv"), tmp_path / "d.tsv", sha256=SHA, retries=3, backoff=0.01)
    assert path.read_bytes() == PAYLOAD
    assert server.hits["/flaky/1/data.tsv"] == 2
    assert any("attempt 1 of 4 failed" in r.getMessage() and "500" in r.getMessage() for r in caplog.records)
    assert _leftovers(tmp_path) == ["d.tsv"]


def test_persistent_server_errors_give_up_after_the_retries(server, tmp_path):
    url = server.url("/always500/data.tsv")
    with pytest.raises(InputError, match=r"after 3 attempt\(s\).*503"):
        download(url, tmp_path / "d.tsv", retries=2, backoff=0.01)
    assert server.hits["/always500/data.tsv"] == 3
    assert _leftovers(tmp_path) == []


def test_not_found_is_not_retried(server, tmp_path):
    with pytest.raises(InputError, match="HTTP 404"):
        download(server.url("/missing.tsv"), tmp_path / "m.tsv", retries=3, backoff=0.01)
    assert server.hits["/missing.tsv"] == 1


def test_short_read_is_retried_then_reported(server, tmp_path):
    with pytest.raises(InputError, match="short read|connection lost"):
        download(server.url("/short/data.tsv"), tmp_path / "s.tsv", retries=1, backoff=0.01)
    assert server.hits["/short/data.tsv"] == 2
    assert _leftovers(tmp_path) == []


def test_connection_refused_is_retried(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match=r"after 2 attempt\(s\)"):
        download(f"http://127.0.0.1:{port}/x.tsv", tmp_path / "x.tsv", retries=1, backoff=0.01, timeout=2)
    assert _leftovers(tmp_path) == []


def test_file_url(tmp_path):
    src = tmp_path / "src" / "counts.tsv"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    path = download(src.as_uri(), tmp_path / "copy.tsv", sha256=SHA)
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(InputError, match="cannot read"):
        download((tmp_path / "nope.tsv").as_uri(), tmp_path / "n.tsv", retries=3, backoff=10)


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="unsupported scheme"):
        download("ftp://example.org/x", tmp_path / "x")
    with pytest.raises(InputError, match="sha256"):
        download((tmp_path / "x").as_uri(), tmp_path / "y", sha256="abc")


def test_fetch_renames_and_unpacks(server, tmp_path):
    loc = f"filtered_feature_bc_matrix.h5={server.url('/matrix.h5')};{server.url('/sample_spatial.tar.gz')}"
    assert parse_locations(loc)[0] == ("filtered_feature_bc_matrix.h5", server.url("/matrix.h5"))
    folder = fetch(loc, tmp_path / "HBC", retries=0)
    assert sorted(p.name for p in folder.iterdir()) == ["filtered_feature_bc_matrix.h5", "spatial"]
    assert (folder / "spatial" / "tissue_positions_list.csv").is_file()
    assert data_path(folder) == folder  # several files: read the folder
    single = fetch(server.url("/data.tsv"), tmp_path / "HM", sha256s=SHA)
    assert data_path(single) == single / "data.tsv"  # one file: read it


def test_fetch_checks_every_hash(server, tmp_path):
    loc = f"{server.url('/data.tsv')};{server.url('/matrix.h5')}"
    with pytest.raises(InputError, match="2 location"):
        fetch(loc, tmp_path / "a", sha256s=SHA)
    with pytest.raises(InputError, match="mismatch"):
        fetch(loc, tmp_path / "b", sha256s=f"{SHA};{WRONG}")
    assert not (tmp_path / "b" / "matrix.h5").exists()


def test_cli(server, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="stentrans")
    register_cli(parser.add_subparsers(dest="command"))
    dest = tmp_path / "cli.tsv"
    args = parser.parse_args(["download", server.url("/data.tsv"), "-o", str(dest), "--sha256", SHA])
    assert args.func(args) == 0
    assert dest.read_bytes() == PAYLOAD
    assert str(dest) in capsys.readouterr().out
    args = parser.parse_args(["download", server.url("/data.tsv"), "-o", str(tmp_path / "bad.tsv"), "--sha256", WRONG, "--retries", "0"])
    with pytest.raises(InputError, match=WRONG):
        args.func(args)
    assert not (tmp_path / "bad.tsv").exists()
