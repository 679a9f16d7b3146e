"Finding, downloading and verifying MovieLens-100K: the shared copy, the cache, and a loopback HTTP server."
import http.server
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contrastrec.data import ML100K_COUNTS, ML100K_FILES, DataUnavailableError, load_movielens_100k

SHARED = Path(os.environ["CONTRASTREC_DATA"])
ZIP_BYTES = (SHARED / "ml-100k.zip").read_bytes()
U_DATA = zipfile.ZipFile(SHARED / "ml-100k.zip").getinfo("ml-100k/u.data")
U_DATA_START = U_DATA.header_offset + 30 + len(U_DATA.filename) + len(U_DATA.extra)  # its deflate stream starts here


def flipped(data: bytes, start: int, n: int = 16) -> bytes:
    "`data` with `n` bytes from `start` inverted."
    out = bytearray(data)
    for i in range(start, start + n): out[i] ^= 0xFF
    return bytes(out)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty cache folder; CONTRASTREC_DATA removed so nothing but the cache or a download can serve the data."
    monkeypatch.delenv("CONTRASTREC_DATA", raising=False)
    monkeypatch.setenv("CONTRASTREC_CACHE", str(tmp_path / "env-cache"))
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def no_home_cache(tmp_path, monkeypatch):
    "Whatever a test does, the default cache is a temporary folder, never ~/.cache."
    monkeypatch.setenv("CONTRASTREC_CACHE", str(tmp_path / "default-cache"))


# ---------------------------------------------------------------------------------------------------
# Loading the shared copy

def check_ml100k(data) -> None:
    inter = data.interactions
    assert len(inter) == ML100K_COUNTS["interactions"] == 100_000
    assert inter.user_id.nunique() == 943 and inter.item_id.nunique() == 1_682
    assert inter.dtypes.to_dict() == {"user_id": np.int64, "item_id": np.int64, "rating": np.float32,
                                      "timestamp": np.int64}
    assert set(inter.rating.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.users.shape == (943, 4) and data.items.shape == (1_682, 3)
    assert isinstance(data.users.gender.dtype, pd.CategoricalDtype)
    assert isinstance(data.users.occupation.dtype, pd.CategoricalDtype)
    assert str(data.items.release_year.dtype) == "Int64"
    # u.item is latin-1: accented titles decode, none holds a replacement character
    assert data.items.title.str.contains("Misérables").any()
    assert not data.items.title.str.contains("\ufffd").any()
    # item 267 has no release date, no year in its title and only the 'unknown' genre
    assert pd.isna(data.items.release_year.loc[267]) and data.items.release_year.isna().sum() == 1
    assert data.items.genres.loc[267] == []
    assert data.items.genres.loc[1] == ["Animation", "Children's", "Comedy"]
    assert not any("unknown" in g for g in data.items.genres)


def test_load_from_zip_path_extracts_into_cache_dir(tmp_path):
    cache_dir = tmp_path / "cache"
    check_ml100k(load_movielens_100k(SHARED / "ml-100k.zip", cache_dir=cache_dir))
    assert (cache_dir / "ml-100k" / "u.data").is_file()
    assert not [p for p in files_in(cache_dir) if not p.startswith("ml-100k")], "only the extracted folder is left"


def test_load_from_folder_and_its_parent(tmp_path):
    for path in (SHARED / "ml-100k", SHARED):
        check_ml100k(load_movielens_100k(path, cache_dir=tmp_path / "cache"))
    assert files_in(tmp_path / "cache") == [], "a folder is read in place, nothing is copied"


def test_load_via_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTRASTREC_DATA", str(SHARED))
    check_ml100k(load_movielens_100k(cache_dir=tmp_path / "cache", download=False))
    assert files_in(tmp_path / "cache") == []


def test_env_var_folder_with_only_the_zip_extracts_once(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "ml-100k.zip").symlink_to(SHARED / "ml-100k.zip")
    monkeypatch.setenv("CONTRASTREC_DATA", str(shared))
    cache_dir = tmp_path / "cache"
    load_movielens_100k(cache_dir=cache_dir)
    stamp = (cache_dir / "ml-100k" / "u.data").stat().st_mtime_ns
    load_movielens_100k(cache_dir=cache_dir)
    assert (cache_dir / "ml-100k" / "u.data").stat().st_mtime_ns == stamp, "the second call reuses the extraction"


def test_env_var_folder_without_the_data_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTRASTREC_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError, match="CONTRASTREC_DATA.*neither ml-100k/ nor ml-100k.zip"):
        load_movielens_100k(cache_dir=tmp_path / "cache")


def test_bad_explicit_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataUnavailableError, match="neither the ml-100k folder nor its zip"):
        load_movielens_100k(tmp_path / "nowhere", cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------------------
# The download path, against a loopback server

ROUTES = {
    "/ml-100k.zip": (200, ZIP_BYTES, len(ZIP_BYTES)),
    "/short-body.zip": (200, ZIP_BYTES[: len(ZIP_BYTES) // 2], len(ZIP_BYTES)),  # Content-Length says more
    "/cut.zip": (200, ZIP_BYTES[: len(ZIP_BYTES) // 2], len(ZIP_BYTES) // 2),  # honest length, half a zip
    "/crc.zip": (200, flipped(ZIP_BYTES, U_DATA_START + 400_000), len(ZIP_BYTES)),  # still inflates, CRC fails
    "/deflate.zip": (200, flipped(ZIP_BYTES, U_DATA_START + 100), len(ZIP_BYTES)),  # no longer inflates
    "/not-a-zip.zip": (200, b"<html>captive portal</html>", 27),
}


class Handler(http.server.BaseHTTPRequestHandler):
    hits: dict = {}

    def do_GET(self):
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path not in ROUTES:
            self.send_error(404)
            return
        status, body, length = ROUTES[self.path]
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def server():
    "A loopback HTTP server (127.0.0.1 only) in a daemon thread; yields its base URL and shuts down."
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.timeout = 5
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try: yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def reset_hits():
    Handler.hits.clear()


def test_download_success_then_cached(server, cache):
    url = f"{server}/ml-100k.zip"
    check_ml100k(load_movielens_100k(url=url, cache_dir=cache, timeout=5))
    assert files_in(cache) == sorted(["ml-100k.zip", "ml-100k", *(f"ml-100k/{f}" for f in ML100K_FILES)])
    assert Handler.hits == {"/ml-100k.zip": 1}
    check_ml100k(load_movielens_100k(url=url, cache_dir=cache, timeout=5))
    check_ml100k(load_movielens_100k(url=url, cache_dir=cache, download=False))
    assert Handler.hits == {"/ml-100k.zip": 1}, "the second call must not download again"


def test_download_goes_to_contrastrec_cache_by_default(server, tmp_path, monkeypatch):
    monkeypatch.delenv("CONTRASTREC_DATA", raising=False)
    monkeypatch.setenv("CONTRASTREC_CACHE", str(tmp_path / "env-cache"))
    load_movielens_100k(url=f"{server}/ml-100k.zip", timeout=5)
    assert (tmp_path / "env-cache" / "ml-100k" / "u.data").is_file()


@pytest.mark.parametrize("route, message", [
    ("/short-body.zip", r"truncated: got \d+ of \d+ bytes.*download the file by hand"),
    ("/cut.zip", r"not a valid zip file.*download .* again by hand"),
    ("/crc.zip", r"corrupt \(bad CRC in ml-100k/u.data\).*download .* again by hand"),
    ("/not-a-zip.zip", r"not a valid zip file"),
    ("/missing.zip", r"Could not download .*404.*download the file by hand"),
])
def test_failed_download_is_a_clear_error_and_leaves_the_cache_clean(server, cache, route, message):
    with pytest.raises(DataUnavailableError, match=message):
        load_movielens_100k(url=server + route, cache_dir=cache, timeout=5)
    assert files_in(cache) == [], "no .part, no zip, no ml-100k folder may be left behind"
    assert Handler.hits == {route: 1}


def test_corrupt_deflate_stream_is_a_clear_error_and_leaves_the_cache_clean(server, cache):
    with pytest.raises(DataUnavailableError, match=r"corrupt.*download .* again by hand"):
        load_movielens_100k(url=f"{server}/deflate.zip", cache_dir=cache, timeout=5)
    assert files_in(cache) == []


def test_refused_connection_fails_fast(cache):
    with socket.socket() as s:  # a loopback port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError, match="Could not download .*Check your network"):
        load_movielens_100k(url=f"http://127.0.0.1:{port}/ml-100k.zip", cache_dir=cache, timeout=3)
    assert time.perf_counter() - start < 5
    assert files_in(cache) == []


def test_no_download_with_empty_cache_is_a_clear_error(cache):
    with pytest.raises(DataUnavailableError, match="not in .* and download=False.*pass its path"):
        load_movielens_100k(cache_dir=cache, download=False)
    assert files_in(cache) == []
