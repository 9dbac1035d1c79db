"""The false-match measurement: its extrapolation from the lower tail, the pairs it calls lost
with and without the second check, and (when Debian's wallpapers or scikit-image's data are
installed) a run over a few real pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framesift_dev import falsematches as fm
from framesift_dev import realimages


def _layout(first: int) -> str:
    return bytes([first, *[64] * 11]).hex()


def test_the_tail_fit_extends_an_exponential_lower_tail_down_to_the_threshold():
    # F(k) = 3 * 2^(k - 12) / N for k = 12..17, then the bulk far away.
    counts = {12: 3, **{k: 3 * 2 ** (k - 13) for k in range(13, 18)}}
    distances = np.array([k for k, c in counts.items() for _ in range(c)] + [40] * 10_000)
    assert fm.tail_fit(distances) == pytest.approx(0.75 / len(distances), rel=1e-6)


def test_pairs_within_t_with_close_layouts_are_lost_today_and_the_check_keeps_the_looser_ones():
    base = 0x0123456789ABCDEF
    a = fm.Hashed("a", f"{base:016x}", _layout(64))
    b = fm.Hashed("b", f"{base ^ 0b11:016x}", _layout(64 + 40))  # 2 bits, ~6.7 levels
    c = fm.Hashed("c", f"{base ^ 0b111:016x}", _layout(64 - 8))  # 3 bits, ~1.3 levels from a
    far = fm.Hashed("far", f"{~base & (2**64 - 1):016x}", _layout(64))
    pairs = fm.Pairs.of([a, b, c, far])
    assert len(pairs.distances) == 6
    assert [(x, y) for x, y, *_ in pairs.lost_today] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [(x, y) for x, y, *_ in pairs.lost_checked] == [("a", "c")]

    result = fm.extrapolated(pairs)
    dropped = result["dropped_at_n"]
    for way in ("bound", "normal", "tail"):
        for n in ("1e+05", "1e+08"):
            assert 0 <= dropped[f"{way}_checked"][n] <= dropped[f"{way}_today"][n] <= 1
    assert result["per_pair"]["measured_today"] == 3 / 6
    assert result["layout_agree_checked"] < result["layout_agree_today"]


def test_the_tail_finds_a_pair_when_some_table_keys_both_alike():
    base = 0x0123456789ABCDEF
    a = fm.Hashed("a", f"{base:016x}", _layout(64))
    one_bit = fm.Hashed("b", f"{base ^ 1 << 40:016x}", _layout(64))
    every_bit = fm.Hashed("c", f"{~base & (2**64 - 1):016x}", _layout(64))
    for depth in fm.TAIL_DEPTHS:
        assert fm.found_by_tail(a, a, depth)
        assert fm.found_by_tail(a, one_bit, depth)  # bit 40 is not among every table's first
        assert not fm.found_by_tail(a, every_bit, depth)


def test_a_chance_per_pair_becomes_a_chance_to_be_dropped_at_n():
    distances = np.random.default_rng(1).binomial(64, 0.5, 3000)
    pairs = fm.Pairs(distances, np.full(3000, 50.0), [], [])
    result = fm.extrapolated(pairs)
    # None matched: the bound is 3 / pairs, so at 10^5 a frame meets 100 expected matches.
    assert result["per_pair"]["bound_today"] == 3 / 3000
    assert result["dropped_at_n"]["bound_today"]["1e+05"] == round(1 - math.exp(-100), 4)


def test_real_pictures_are_hashed_and_their_derived_near_duplicates_found():
    if reason := realimages.missing():
        pytest.skip(reason)
    photos = [p for p in realimages.available() if p.photograph][:4]
    if len(photos) < 4:
        pytest.skip("fewer than 4 real photographs installed")
    rows = list(fm.measure(photos))
    distinct = [r for r in rows if r["kind"] == "distinct"]
    near = {r["variant"]: r for r in rows if r["kind"] == "near duplicate"}
    assert [(r["set"], r["pictures"], r["pairs"]) for r in distinct] == [
        ("photographs", 4, 6),
        ("all distinct pictures", 4, 6),
        ("photographs' quadrants", 16, 120),
    ]
    assert set(near) == set(fm.VARIANTS)
    assert near["JPEG q90"]["recall_today"] == near["JPEG q90"]["recall_checked"] == 1.0
    assert list(near["JPEG q90"]["tail_recall"].values()) == [1.0] * len(fm.TAIL_DEPTHS)
    assert all(len(r["histogram"]) == 65 and sum(r["histogram"]) == r["pairs"] for r in distinct)


def test_a_picture_shipped_in_several_sizes_or_a_dark_variant_counts_once(tmp_path, monkeypatch):
    backgrounds, plasma = tmp_path / "backgrounds", tmp_path / "wallpapers"
    for name, size in [
        ("mate/nature/Elephants.jpg", 10),
        ("mate/nature/Elephants_3840x2160.jpg", 30),  # the largest file of a picture is kept
        ("mate/nature/Elephants_5640x3172.jpg", 20),
        ("gnome/adwaita-l.webp", 5),
        ("gnome/adwaita-d.webp", 5),  # the dark variant of the same design
        ("Bridge_by_Sander_Klootwijk.jpg", 5),
        ("notes.txt", 5),
    ]:
        (backgrounds / name).parent.mkdir(parents=True, exist_ok=True)
        (backgrounds / name).write_bytes(b"x" * size)
    images = plasma / "Path" / "contents" / "images"
    images.mkdir(parents=True)
    for name in ("1080x1920.jpg", "2560x1600.jpg"):
        (images / name).write_bytes(b"x")
    monkeypatch.setattr(realimages, "BACKGROUNDS", backgrounds)
    monkeypatch.setattr(realimages, "PLASMA", plasma)
    monkeypatch.setattr(realimages, "OPENCV", tmp_path / "absent")
    monkeypatch.setattr(realimages, "skimage_data", lambda: None)

    found = {image.name: image for image in realimages.available()}
    assert sorted(found) == [
        "Bridge_by_Sander_Klootwijk",
        "Path",
        "gnome/adwaita-l",
        "mate/nature/Elephants",
    ]
    assert found["mate/nature/Elephants"].path.name == "Elephants_3840x2160.jpg"
    assert found["Path"].path.name == "2560x1600.jpg"  # the largest area
    assert sorted(n for n, image in found.items() if image.photograph) == [
        "Bridge_by_Sander_Klootwijk",
        "Path",
        "mate/nature/Elephants",
    ]
    assert realimages.missing() is None


def test_with_no_source_installed_it_says_what_to_install(tmp_path, monkeypatch):
    for name in ("BACKGROUNDS", "PLASMA", "OPENCV"):
        monkeypatch.setattr(realimages, name, tmp_path / "absent")
    monkeypatch.setattr(realimages, "skimage_data", lambda: None)
    assert realimages.available() == []
    reason = realimages.missing()
    assert reason is not None and "apt-get install mate-backgrounds" in reason
