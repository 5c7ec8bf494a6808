"""Copies among the input photos: signatures, their distance, and groups of copies."""
import cv2
import numpy as np
import pytest
from skimage import data

from augment import copies
from augment.demo import astronaut


def reencoded(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)


def test_a_signature_is_the_hash_of_the_picture_and_of_its_mirror_image():
    photo = astronaut()
    signature = copies.signature(photo)
    assert len(signature) == 128 and int(signature, 16) >= 0
    mirrored = copies.signature(np.ascontiguousarray(photo[:, ::-1]))
    assert (mirrored[:64], mirrored[64:]) == (signature[64:], signature[:64])


@pytest.mark.parametrize("change", ["mirrored", "halved", "jpeg 60", "brighter", "greyscale"])
def test_copies_of_a_photo_lie_within_the_limit(change):
    photo = astronaut()
    copy = {
        "mirrored": lambda: np.ascontiguousarray(photo[:, ::-1]),
        "halved": lambda: cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA),
        "jpeg 60": lambda: reencoded(photo, 60),
        "brighter": lambda: cv2.convertScaleAbs(photo, alpha=1.15, beta=10),
        "greyscale": lambda: cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB),
    }[change]()
    assert copies.distance(copies.signature(photo), copies.signature(copy)) <= copies.MAX_DISTANCE


def test_other_photos_and_other_framings_lie_far_beyond_it():
    photo = astronaut()
    others = [data.chelsea(), data.coffee(), photo[40:, 40:], cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE)]
    for other in others:
        assert copies.distance(copies.signature(photo), copies.signature(np.ascontiguousarray(other))) > 30


MIRROR_NOISE = int.from_bytes(np.random.default_rng(0).bytes(32), "big")


def signature_of(bits: list[int]) -> str:
    """A signature whose plain hash has the given bits set; its mirror half unlike any plain one."""
    plain = sum(1 << bit for bit in bits)
    return f"{plain:064x}{plain ^ MIRROR_NOISE:064x}"


def test_copies_are_grouped_through_each_other_under_the_smallest_name():
    base = list(range(0, 256, 2))  # 128 bits set
    signatures = {
        "b.jpg": signature_of(base),
        "c.jpg": signature_of(base[10:]),  # 10 bits from b
        "a.jpg": signature_of(base[20:]),  # 10 from c, 20 from b: a copy of b through c
        "d.jpg": signature_of(list(range(1, 256, 2))),  # far from all
        "e.jpg": signature_of(base[14:]),  # 4 from c
    }
    groups = copies.copy_groups(signatures)
    assert groups == {"a.jpg": "a.jpg", "b.jpg": "a.jpg", "c.jpg": "a.jpg", "d.jpg": "d.jpg", "e.jpg": "a.jpg"}
    assert copies.copy_groups(signatures, max_distance=5) == {
        "a.jpg": "a.jpg", "b.jpg": "b.jpg", "c.jpg": "c.jpg", "d.jpg": "d.jpg", "e.jpg": "c.jpg"}


def test_linked_names_start_in_one_group_and_join_their_copies():
    base = list(range(0, 256, 2))
    signatures = {
        "masked/b.jpg": signature_of(list(range(1, 256, 2))),  # b's other version: nothing like b
        "plain/b.jpg": signature_of(base),
        "plain/b_mirror.jpg": signature_of(base[4:]),  # a copy of plain/b
        "plain/c.jpg": signature_of(list(range(0, 256, 3))),
        "plain/blank.jpg": signature_of([]),
        "masked/blank.jpg": signature_of([]),
    }
    linked = {"masked/b.jpg": "b", "plain/b.jpg": "b", "plain/b_mirror.jpg": "b_mirror", "plain/c.jpg": "c",
              "plain/blank.jpg": "blank", "masked/blank.jpg": "blank"}
    assert copies.copy_groups(signatures, linked=linked) == {
        "masked/b.jpg": "masked/b.jpg", "plain/b.jpg": "masked/b.jpg", "plain/b_mirror.jpg": "masked/b.jpg",
        "plain/c.jpg": "plain/c.jpg", "plain/blank.jpg": "masked/blank.jpg", "masked/blank.jpg": "masked/blank.jpg"}


def test_a_mirrored_copy_is_found_and_so_are_many_identical_ones():
    photo = astronaut()
    signatures = {f"same{index:04d}.png": copies.signature(photo) for index in range(copies.CROWDED_BAND + 5)}
    signatures["mirror.png"] = copies.signature(np.ascontiguousarray(photo[:, ::-1]))
    signatures["cat.png"] = copies.signature(data.chelsea())
    groups = copies.copy_groups(signatures)
    assert groups["cat.png"] == "cat.png"
    assert {group for name, group in groups.items() if name != "cat.png"} == {"mirror.png"}


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="RGB uint8"):
        copies.signature(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="under 32"):
        copies.copy_groups({}, max_distance=32)


def test_a_large_photo_is_sampled_and_keeps_the_hash_of_its_smaller_copies():
    large = cv2.resize(astronaut(), (2400, 2400), interpolation=cv2.INTER_CUBIC)
    assert large.shape[1] > copies.SAMPLED[0] and large.shape[0] > copies.SAMPLED[1]
    for side in (1200, 600):
        smaller = cv2.resize(large, (side, side), interpolation=cv2.INTER_AREA)
        assert copies.distance(copies.signature(large), copies.signature(smaller)) <= 2


def test_blank_and_flat_pictures_are_not_taken_for_copies_of_each_other():
    blank, grey = np.zeros((90, 120, 3), np.uint8), np.full((300, 200, 3), 128, np.uint8)
    ramp = np.repeat(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(100, axis=0)
    signatures = {name: copies.signature(np.ascontiguousarray(image))
                  for name, image in (("blank.png", blank), ("grey.png", grey), ("ramp.png", ramp))}
    assert copies.distance(signatures["blank.png"], signatures["grey.png"]) == 0
    assert copies.copy_groups(signatures) == {name: name for name in signatures}


def test_a_face_keeps_its_signature_when_its_photo_is_turned_zoomed_and_cropped(face_image, face_landmarks):
    turn = cv2.getRotationMatrix2D((128.0, 110.0), 20.0, 1.7)  # eyes about 77 px apart instead of 45
    turn[:, 2] += (40.0, 30.0)
    turned = cv2.warpAffine(face_image, turn, (360, 360), flags=cv2.INTER_LINEAR)
    turned_landmarks = np.c_[face_landmarks, np.ones(68)] @ turn.T
    original = copies.face_signature(face_image, face_landmarks)
    assert copies.distance(original, copies.face_signature(turned, turned_landmarks)) <= copies.MAX_DISTANCE
    assert copies.distance(copies.signature(face_image), copies.signature(turned)) > 60  # the picture's hash is lost
    cat = cv2.resize(data.chelsea(), (256, 256), interpolation=cv2.INTER_AREA)
    assert copies.distance(original, copies.face_signature(cat, face_landmarks)) > 60
    small = cv2.resize(face_image, (64, 64), interpolation=cv2.INTER_AREA)  # eyes 11 px apart: enlarged to the chip
    assert len(copies.face_signature(small, face_landmarks / 4)) == 128
    with pytest.raises(ValueError, match="68 landmarks"):
        copies.face_signature(face_image, face_landmarks[:5])
