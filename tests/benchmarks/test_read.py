"""Helpers of `digits bench read`: scoring and the Telegram-sized copies of real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import vision
from benchmarks.read import Score, as_1280x960, tilted


def _jpeg(w: int, h: int) -> bytes:
    img = np.full((h, w, 3), 230, np.uint8)
    cv2.putText(img, "42", (w // 4, h // 2), cv2.FONT_HERSHEY_SIMPLEX, h / 200, (20, 20, 20), 3)
    return cv2.imencode(".jpg", img)[1].tobytes()


@pytest.mark.parametrize(
    ("w", "h", "size"),
    [(2000, 1500, (1280, 960)), (1500, 2000, (960, 1280)), (400, 300, (1280, 960))],
)
def test_a_4_3_photo_is_resized_to_1280x960(w: int, h: int, size: tuple[int, int]) -> None:
    out = as_1280x960(_jpeg(w, h))
    assert out is not None
    img = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)
    assert (img.shape[1], img.shape[0]) == size


@pytest.mark.parametrize(("w", "h"), [(500, 500), (500, 100), (1920, 1080)])
def test_other_frames_are_left_out(w: int, h: int) -> None:
    assert as_1280x960(_jpeg(w, h)) is None


def test_score_aligns_digits_and_ignores_spacing_for_exact() -> None:
    s = Score("x")
    s.add("a", "12 34", "1234", 10.0)  # same digits, other layout
    s.add("b", "567", "5677", 30.0)  # one digit too many
    m = s.summary()
    assert m["exact"] == 0.5 and m["exact_layout"] == 0.0
    assert m["digit_count_accuracy"] == 0.5
    assert m["digit_accuracy"] == pytest.approx(6 / 7)  # 7 expected, one insertion
    assert m["p50_ms"] == pytest.approx(20.0)
    assert [f[0] for f in s.failures] == ["b"]


def test_a_tilted_photo_keeps_all_of_it_and_continues_its_edges() -> None:
    img = np.full((100, 200, 3), 230, np.uint8)
    img[40:60, 90:110] = 20  # a dark square in the middle
    out = cv2.imdecode(np.frombuffer(tilted(img, 12), np.uint8), cv2.IMREAD_COLOR)
    c, s = np.cos(np.radians(12)), np.sin(np.radians(12))
    assert out.shape[:2] == (round(100 * c + 200 * s), round(200 * c + 100 * s))
    assert np.abs(out[0, 0].astype(int) - 230).max() < 8  # the corner added is paper
    assert out[out.shape[0] // 2, out.shape[1] // 2].max() < 80  # the square, still centred


def test_photos_are_scored_per_source_and_kind(tmp_path) -> None:
    from types import SimpleNamespace

    from benchmarks.read import bench_photos

    images = tmp_path / "photos" / "images"
    images.mkdir(parents=True)
    rows = [("a.jpg", "12", "one/repo", "photo"), ("b.jpg", "7", "one/repo", "scan")]
    rows.append(("c.jpg", "3", "two/repo", "photo"))
    for name, *_ in rows:
        (images / name).write_bytes(_jpeg(320, 240))
    (tmp_path / "photos" / "labels.csv").write_text(
        "file,text,source_repo,source_commit,source_path,kind\n"
        + "".join(f"{f},{t},{s},0,x,{k}\n" for f, t, s, k in rows)
    )
    answers = {"a.jpg": "12", "b.jpg": "1", "c.jpg": "3"}
    # b's 7 read as 1: the classifier read 7, the line model 1, and the product followed it
    own = {"b.jpg": (7, 1)}

    class Reader:
        """Answers in the order the bench reads: each 4:3 photo, then its 1280×960 copy."""

        def __init__(self) -> None:
            self.order = iter(["a.jpg", "a.jpg", "b.jpg", "b.jpg", "c.jpg", "c.jpg"])

        def read(self, data: bytes) -> SimpleNamespace:
            name = next(self.order)
            digits = [
                SimpleNamespace(
                    label=int(c),
                    line=0,
                    classifier_label=own.get(name, (int(c),))[0],
                    line_label=own.get(name, (0, int(c)))[1],
                )
                for c in answers[name]
            ]
            return SimpleNamespace(text=answers[name], digits=digits)

    scores = bench_photos(Reader(), tmp_path)
    assert scores.attribution == {(True, True, True): 3, (True, False, False): 1}
    assert list(scores.misread) == ["b.jpg"] and scores.misread["b.jpg"].text == "1"
    assert scores.whole.summary()["exact"] == pytest.approx(2 / 3)
    assert set(scores.by_source) == {"one/repo", "two/repo"}
    assert scores.by_source["one/repo"].summary()["exact"] == 0.5
    assert scores.by_source["two/repo"].summary()["exact"] == 1.0
    assert scores.by_kind["photo"].summary()["exact"] == 1.0
    assert scores.by_kind["scan"].summary()["exact"] == 0.0
    # One source half right and one fully right: 75 %, not the 2/3 of the images.
    assert scores.source_mean("exact") == pytest.approx(0.75)


def _scores(per_source: dict[str, tuple[int, int]]) -> dict:
    """{source: Score} with `hits` exact readings out of `n`."""
    out = {}
    for source, (hits, n) in per_source.items():
        s = Score(source)
        for i in range(n):
            s.add(f"{source}{i}", "1", "1" if i < hits else "7", 1.0)
        out[source] = s
    return out


def test_leave_one_source_out_picks_on_the_other_sources() -> None:
    from benchmarks.read import leave_one_source_out

    # "b" wins on the big source only; "a" on the two small ones.
    settings = {
        "a": _scores({"big": (5, 10), "s1": (2, 2), "s2": (2, 2)}),
        "b": _scores({"big": (9, 10), "s1": (0, 2), "s2": (0, 2)}),
    }
    loso = leave_one_source_out(settings)
    # Held out "big": a has 4 on the others, b 0 -> a (5/10). Held out s1: a 7, b 9 -> b (0/2).
    assert loso.chosen == {"big": "a", "s1": "b", "s2": "b"}
    assert loso.exact == pytest.approx(5 / 14)
    assert loso.source_mean == pytest.approx((0.5 + 0 + 0) / 3)
    assert loso.all_sources == {"a": pytest.approx(9 / 14), "b": pytest.approx(9 / 14)}


def test_leave_one_source_out_prefers_the_first_setting_on_a_tie() -> None:
    from benchmarks.read import leave_one_source_out

    same = {"x": (1, 2), "y": (2, 2)}
    loso = leave_one_source_out({"old": _scores(same), "new": _scores(same)})
    assert set(loso.chosen.values()) == {"old"} and loso.exact == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="same sources"):
        leave_one_source_out({"old": _scores(same), "new": _scores({"x": (1, 2)})})


def test_bench_fields_scores_the_reader_beside_its_ceiling(mnist) -> None:
    from benchmarks.read import FIELDS_CEILING, bench_fields
    from vision import DigitReader

    _, test = mnist
    scores = bench_fields(DigitReader.load(), test, 6, seed=1)
    names = [s.name for s in scores]
    assert names[:2] == ["fields", FIELDS_CEILING]
    assert scores[0].n == scores[1].n == 6 == sum(s.n for s in scores[2:])
    assert all(name.startswith("fields: ") for name in names[2:])
    assert scores[1].summary()["digit_accuracy"] > 0.9  # MNIST test digits, read alone


def test_several_seeds_are_each_reported_then_summarised(mnist_dir, monkeypatch, capsys) -> None:
    """`--seed A --seed B`: one line per set and seed, then each set's mean and range."""
    import json

    from digits.cli import main

    monkeypatch.setenv("DIGITS_MNIST_DIR", str(mnist_dir))
    argv = ["bench", "read", "--synthetic", "6", "--no-photos", "--json"]
    assert main([*argv, "--seed", "3", "--seed", "4"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    per_seed = {r["set"]: r for r in lines if "images" in r}
    assert {"synthetic (seed 3)", "synthetic (seed 4)", "synthetic ceiling (seed 4)"} <= set(
        per_seed
    )
    spread = {r["set"]: r for r in lines if "seeds" in r}
    assert spread["synthetic"]["seeds"] == [3, 4]
    assert spread["synthetic"]["exact"] == [
        per_seed["synthetic (seed 3)"]["exact"],
        per_seed["synthetic (seed 4)"]["exact"],
    ]
    # A single seed reads the same draw as before, under the set's own name.
    assert main([*argv, "--seed", "4"]) == 0
    single = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert not any("seeds" in r for r in single)
    alone = next(r for r in single if r["set"] == "synthetic")
    assert alone["exact"] == per_seed["synthetic (seed 4)"]["exact"]


def test_the_line_model_is_chosen_leave_one_source_out(mnist, tmp_path, monkeypatch, capsys):
    """`--choose-lines none`: the reader with and without the line model, chosen per source.

    `--choose-model` puts another classifier beside them in the same choice.
    """
    import json

    import cv2

    from digits.cli import main
    from training.data.fields import draw_field

    _, test = mnist
    images = tmp_path / "photos" / "images"
    images.mkdir(parents=True)
    rows = []
    for i, source in enumerate(["a/forms", "a/forms", "b/forms"]):
        field = (
            draw_field(
                np.random.default_rng([23, 0]),
                (test.images, test.labels),
                background="cells",
                n_digits=6,
            )
            if i == 0
            else draw_field(np.random.default_rng(i), (test.images, test.labels))
        )
        cv2.imwrite(str(images / f"f{i}.png"), field.image)
        rows.append(f"f{i}.png,{field.text},{source},0,x,digit-string-crop\n")
    (tmp_path / "photos" / "labels.csv").write_text(
        "file,text,source_repo,source_commit,source_path,kind\n" + "".join(rows)
    )
    monkeypatch.setenv("DIGITS_DEVSETS_DIR", str(tmp_path))
    mnist_only = Path(vision.__file__).parent / "models" / "mnist-v1.pt"
    argv = ["bench", "read", "--synthetic", "0", "--json", "--choose-lines", "none"]
    sheet = tmp_path / "misread.png"
    assert main([*argv, "--choose-model", str(mnist_only), "--failure-sheet", str(sheet)]) == 0
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    real = next(r for r in out if r.get("set") == "real photos")
    misread = round((1 - real["exact"]) * real["images"])
    said = f"{misread} misread photos drawn into {sheet}" if misread else "no photo misread"
    assert said in captured.err
    assert sheet.exists() == (misread > 0)
    with pytest.raises(SystemExit, match="is no folder"):
        main([*argv, "--failure-sheet", str(tmp_path / "missing" / "sheet.png")])
    loso = next(r["leave_one_source_out"] for r in out if "leave_one_source_out" in r)
    assert set(loso["chosen"]) == {"a/forms", "b/forms"}
    shipped = "classifier shipped, segmenter shipped, line model shipped"
    assert set(loso["all_sources"]) == {shipped, "line model none", f"classifier {mnist_only}"}
    assert set(loso["chosen"].values()) <= set(loso["all_sources"])
    # the walls between boxed digits: read right only with the line model
    assert loso["all_sources"][shipped] > loso["all_sources"]["line model none"]


def _reading(lines: list[list[tuple[int, tuple[int, int, int, int]]]]):
    from vision.reader import ReadDigit, Reading

    digits = [
        ReadDigit(label, 0.99, 0, 0.01, box, li, 0, np.zeros((28, 28), np.uint8))
        for li, line in enumerate(lines)
        for label, box in line
    ]
    text = "\n".join("".join(str(label) for label, _ in line) for line in lines)
    return Reading(text, digits, 320, 240, 1.0)


def test_the_failure_sheet_draws_each_misread_photo_and_boxes_wrong_digits_in_red(
    tmp_path,
) -> None:
    from benchmarks.read import CAPTION, SHEET_COLUMNS, TILE, Photo, failure_sheet

    for shade, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        picture = np.full((240, 320, 3), 200 + 20 * shade, np.uint8)
        (tmp_path / name).write_bytes(cv2.imencode(".jpg", picture)[1].tobytes())
    photos = [
        Photo(tmp_path / "a.jpg", "12", "s", "photo"),
        Photo(tmp_path / "b.jpg", "12\n3", "s", "photo"),  # second line misread
        Photo(tmp_path / "c.jpg", "5", "s", "photo"),  # one digit too many
    ]
    readings = {
        "b.jpg": _reading(
            [[(1, (40, 60, 40, 80)), (2, (100, 60, 40, 80))], [(8, (200, 150, 40, 60))]]
        ),
        "c.jpg": _reading([[(5, (40, 60, 40, 80)), (5, (100, 60, 40, 80))]]),
    }
    out = tmp_path / "sheet.png"
    assert failure_sheet(photos, readings, out) == 2
    sheet = cv2.imread(str(out))
    assert sheet.shape == (TILE + CAPTION, SHEET_COLUMNS * TILE, 3)
    red = (sheet[..., 2] > 200) & (sheet[..., 1] < 40) & (sheet[..., 0] < 40)
    ys, xs = np.nonzero(red[:, :TILE])
    # b's tile: a red box around the misread 8 only (the picture, narrower than a tile,
    # is drawn at its own size).
    assert xs.min() >= 200 - 4 and xs.max() <= 240 + 4
    assert ys.min() >= 150 - 4 and ys.max() <= 210 + 4
    assert not red[:, TILE : 2 * TILE].any()  # c: the count is wrong, no digit is marked
    assert failure_sheet(photos, {}, tmp_path / "none.png") == 0
    assert not (tmp_path / "none.png").exists()


def test_each_digit_is_counted_by_which_reading_is_right() -> None:
    from benchmarks.read import attribute
    from vision.reader import ReadDigit, Reading

    def digit(label: int, clf: int, line: int | None, li: int = 0) -> ReadDigit:
        crop = np.zeros((28, 28), np.uint8)
        return ReadDigit(label, 0.9, 0, 0.1, (0, 0, 1, 1), li, 0, crop, False, clf, line)

    reading = Reading(
        "17\n4",
        [digit(1, 1, 1), digit(7, 1, 7), digit(4, 4, 9, li=1)],
        10,
        10,
        1.0,
    )
    # "1" both right; "7" the line model rescues the classifier's 1; "4" the classifier
    # outweighs the line model's 9
    assert attribute("17\n4", reading) == {
        (True, True, True): 1,
        (False, True, True): 1,
        (True, False, True): 1,
    }
    # a product that follows the wrong reading, and a digit no line model read
    wrong = Reading("29", [digit(9, 2, 9), digit(9, 9, None)], 10, 10, 1.0)
    assert attribute("29", wrong) == {(True, False, False): 1, (True, None, True): 1}
    # a line holding a digit too many: which digit stands for which is a guess
    assert attribute("17", Reading("127", [digit(1, 1, 1)] * 3, 10, 10, 1.0)) == {}
