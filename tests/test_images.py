"""Reading odd and broken image files, and atomic writes."""
import io
import os
import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from augment import images
from augment.images import (PICTURE_SUFFIXES, ImageError, contact_sheet, is_image_path, load_rgb, load_rgb_reduced,
                            require_picture_suffix, resize_longest, save_rgb, staged, working_longest, write_atomic)


def png_header_only(path, width, height):
    """A PNG whose header claims a size (no pixel data needs to exist to be refused)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk
                     + struct.pack(">I", zlib.crc32(chunk)) + end)


@pytest.mark.parametrize("mode, suffix", [
    ("L", ".png"), ("RGBA", ".png"), ("P", ".png"), ("I;16", ".png"), ("RGB", ".bmp"), ("RGB", ".webp"),
    ("CMYK", ".jpg"), ("LA", ".png"), ("RGB", ".tiff"), ("I", ".tif"), ("F", ".tiff"), ("P", ".gif"),
    ("L", ".pgm"), ("RGB", ".ppm"), ("RGB", ".heic"), ("RGB", ".avif"), ("RGB", ".jfif"),
])
def test_any_pixel_format_becomes_rgb8(tmp_path, mode, suffix):
    pixels = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode) if mode != "I;16" else Image.fromarray(
        pixels[:, :, 0].astype(np.uint16) * 257)
    path = tmp_path / f"x{suffix}"
    if suffix == ".heic":  # written by pillow-heif alone: the product must teach Pillow to read it
        import pillow_heif
        pillow_heif.from_pillow(image).save(path)
    else:
        image.save(path)
    rgb = load_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 30, 3)
    assert is_image_path(path)  # a generation run lists it


def test_sixteen_bit_keeps_its_brightness(tmp_path):
    Image.fromarray(np.full((10, 10), 40000, np.uint16)).save(tmp_path / "deep.png")
    assert load_rgb(tmp_path / "deep.png")[0, 0, 0] == round(40000 / 65535 * 255)


@pytest.mark.parametrize("values, expected", [(0.25, 64), (100.0, 100), (30000.0, 117)])
def test_float_images_are_scaled_by_the_range_their_values_show(tmp_path, values, expected):
    Image.fromarray(np.full((10, 10), values, np.float32)).save(tmp_path / "deep.tiff")
    assert load_rgb(tmp_path / "deep.tiff")[0, 0].tolist() == [expected] * 3


def test_transparent_pixels_become_white(tmp_path):
    Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(tmp_path / "clear.png")
    assert (load_rgb(tmp_path / "clear.png") == 255).all()


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored rotated: display turned 90 degrees clockwise
    image.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    rgb = load_rgb(tmp_path / "turned.jpg")
    assert rgb.shape == (40, 20, 3)
    assert rgb[:20].mean() > 200 and rgb[20:].mean() < 50  # the white half is now on top


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello, I am text"), "not a readable image"),
    (lambda p: p.write_bytes(open_jpeg_bytes()[:300]), "corrupt image"),
    (lambda p: png_header_only(p, 20000, 20000), "too large: 20000x20000"),
    (os.mkfifo, "not a file"),  # opened, a pipe named .jpg would wait for a writer for ever
    (lambda p: p.mkdir(), "not a file"),
])
def test_bad_files_raise_one_line_reasons(tmp_path, make, reason):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImageError, match=reason) as error:
        load_rgb(path)
    assert "\n" not in str(error.value)


def test_missing_file_and_dangling_link(tmp_path):
    (tmp_path / "link.jpg").symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(ImageError, match="^cannot read: No such file"):
        load_rgb(tmp_path / "nothing.jpg")
    with pytest.raises(ImageError, match=f"^cannot read: a link to {re.escape(str(tmp_path / 'gone.jpg'))}, which does not exist$"):
        load_rgb(tmp_path / "link.jpg")


def open_jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_save_and_reload_round_trip(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    save_rgb(tmp_path / "a" / "b.png", pixels)
    np.testing.assert_array_equal(load_rgb(tmp_path / "a" / "b.png"), pixels)


def test_atomic_write_leaves_nothing_when_it_fails(tmp_path):
    class Boom:
        def __len__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        write_atomic(tmp_path / "out.bin", Boom())
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_takes_chunks_as_they_come_and_all_or_nothing(tmp_path):
    write_atomic(tmp_path / "whole.txt", (line.encode() for line in ("one\n", "two\n")))
    assert (tmp_path / "whole.txt").read_bytes() == b"one\ntwo\n"

    def broken_off():
        yield b"one\n"
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError):
        write_atomic(tmp_path / "half.txt", broken_off())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.txt"]


def test_a_failed_write_names_the_file_asked_for_not_its_temporary_name(tmp_path):
    (tmp_path / "taken").write_bytes(b"a file where a folder should be")
    target = tmp_path / "taken" / "out.jpg"
    with pytest.raises(OSError) as raised:
        write_atomic(target, b"data")
    assert raised.value.filename == str(target) and raised.value.strerror
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_a_staged_file_keeps_the_suffix_and_replaces_the_old_one_only_when_finished(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"last run's video")
    with pytest.raises(KeyboardInterrupt), staged(target) as temp_path:
        assert temp_path.parent == tmp_path and temp_path.suffix == ".mp4" and temp_path.name.startswith(".")
        temp_path.write_bytes(b"half a video")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"] and target.read_bytes() == b"last run's video"
    with staged(target) as temp_path:
        temp_path.write_bytes(b"this run's video")
        assert target.read_bytes() == b"last run's video"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"] and target.read_bytes() == b"this run's video"
    longest = tmp_path / ("n" * 251 + ".jpg")  # as long as a file name may be: its temporary name must fit too
    write_atomic(longest, b"data")
    assert longest.read_bytes() == b"data"


def test_resize_longest_and_suffixes():
    image = np.zeros((100, 50, 3), np.uint8)
    small, scale = resize_longest(image, 40)
    assert small.shape == (40, 20, 3) and scale == pytest.approx(0.4)
    assert is_image_path(Path("a.JPEG")) and not is_image_path(Path("a.txt"))


def test_every_picture_suffix_is_written_and_read_back_and_others_are_refused(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for suffix in PICTURE_SUFFIXES:
        require_picture_suffix(tmp_path / f"a{suffix}")
        save_rgb(tmp_path / f"a{suffix}", image)
        assert load_rgb(tmp_path / f"a{suffix}").shape == image.shape
    for name in ("a.pgm", "a.txt", "a"):  # PGM holds grey only
        with pytest.raises(ImageError, match=f"{name}: cannot write"):
            require_picture_suffix(tmp_path / name)
        with pytest.raises(ImageError, match="cannot encode image"):
            save_rgb(tmp_path / name, image)
        assert not (tmp_path / name).exists()


def test_contact_sheet_tiles_and_captions():
    tiles = [np.full((30, 60, 3), v, np.uint8) for v in (0, 100, 200)]
    sheet = contact_sheet(tiles, 2, 64, ["a", "b", "c"])
    assert sheet.shape == (128, 128, 3)
    assert sheet[32, 96].tolist() == [100, 100, 100]


def test_written_files_are_readable_by_others_as_umask_allows(tmp_path):
    write_atomic(tmp_path / "shared.bin", b"data")
    assert (tmp_path / "shared.bin").stat().st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_large_jpeg_is_decoded_smaller_but_never_below_the_size_asked(tmp_path):
    pixels = cv2.resize(np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8), (2000, 1200),
                        interpolation=cv2.INTER_CUBIC)
    Image.fromarray(pixels).save(tmp_path / "large.jpg", quality=95)
    Image.fromarray(pixels).save(tmp_path / "large.png")

    reduced, scale = load_rgb_reduced(tmp_path / "large.jpg", 800)
    assert reduced.shape == (600, 1000, 3) and scale == 0.5  # 1/4 would leave 500 px, under 800
    full = load_rgb(tmp_path / "large.jpg")
    shrunk = cv2.resize(full, (1000, 600), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced.astype(int) - shrunk).mean() < 2  # the same picture, only smaller
    assert load_rgb_reduced(tmp_path / "large.jpg", 300)[0].shape == (300, 500, 3)
    assert load_rgb_reduced(tmp_path / "large.jpg", None)[1] == 1.0
    assert load_rgb_reduced(tmp_path / "large.jpg", 1500)[0].shape == full.shape  # halving would be too small
    png, png_scale = load_rgb_reduced(tmp_path / "large.png", 800)  # only JPEG decoders scale as they go
    assert png.shape == (1200, 2000, 3) and png_scale == 1.0


def test_a_panorama_keeps_half_the_side_asked_on_its_short_side_within_a_reach():
    assert working_longest(1200, 1600, 800) == 800  # 4:3, as a portrait or a landscape
    assert working_longest(1600, 1200, 800) == 800
    assert working_longest(1000, 2000, 800) == 800  # 2:1: the short side is 400 already
    assert working_longest(1000, 3000, 800) == 1200  # 3:1 keeps its short side at 400
    assert working_longest(500, 5000, 800) == 3200  # 10:1 goes no longer than 4x the side
    assert working_longest(300, 1500, 800) == 1500  # never longer than the picture itself
    assert working_longest(0, 500, 800) == 500


def test_a_large_jpeg_panorama_is_decoded_no_smaller_than_its_working_copy(tmp_path):
    Image.fromarray(np.full((800, 6400, 3), 90, np.uint8)).save(tmp_path / "wide.jpg")
    rgb, scale = load_rgb_reduced(tmp_path / "wide.jpg", 800)
    assert rgb.shape == (400, 3200, 3) and scale == 0.5  # 1/8 would leave 800x100


def test_a_reduced_decode_honours_exif_orientation(tmp_path):
    pixels = np.zeros((1200, 2000, 3), np.uint8)
    pixels[:, :1000] = 255  # left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # display turned 90 degrees clockwise
    image.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    rgb, scale = load_rgb_reduced(tmp_path / "turned.jpg", 800)
    assert rgb.shape == (1000, 600, 3) and scale == 0.5
    assert rgb[:500].mean() > 200 and rgb[500:].mean() < 50


def test_a_jpeg_over_the_pixel_limit_is_read_where_a_reduced_decode_is_under_it(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 3_000_000)  # the same rule as 50 megapixels, on a smaller photo
    pixels = np.full((1600, 2400, 3), 128, np.uint8)
    Image.fromarray(pixels).save(tmp_path / "huge.jpg")
    Image.fromarray(pixels).save(tmp_path / "huge.png")
    rgb, scale = load_rgb_reduced(tmp_path / "huge.jpg", 800)
    assert rgb.shape == (800, 1200, 3) and scale == 0.5
    with pytest.raises(ImageError, match="too large: 2400x1600 is over 3 megapixels"):
        load_rgb(tmp_path / "huge.jpg")
    with pytest.raises(ImageError, match="too large: 2400x1600"):
        load_rgb_reduced(tmp_path / "huge.png", 800)  # no reduced decode: refused before decoding
