"""Reading photos and aligning them to the canonical crop, on real LFW faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from veilbench.data.align import FaceAligner, center_crop, similarity_transform
from veilbench.data.images import load_rgb, save_png
from veilbench.errors import DataError, WeightsError
from veilbench.models.base import FaceSpace


@pytest.fixture(scope="module")
def aligner() -> FaceAligner:
    al = FaceAligner()
    try:
        al.detector()
    except WeightsError as exc:
        pytest.skip(f"YuNet weights unavailable: {exc}")
    return al


@pytest.fixture(scope="module")
def photo(lfw_dev: Path) -> Path:
    return lfw_dev / "AJ_Cook" / "AJ_Cook_0001.jpg"


def _template(space: FaceSpace) -> np.ndarray:
    return np.asarray(space.landmarks())


def test_similarity_transform_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale = 0.3, 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity_transform(src, src @ rot.T + [3.0, -4.0])
    np.testing.assert_allclose(m, np.c_[rot, [3.0, -4.0]], atol=1e-9)


def test_real_photo_aligns_onto_the_template(aligner, photo):
    face = aligner.align(load_rgb(photo))
    space = aligner.space
    assert face.crop.shape == (space.size, space.size, 3) and face.crop.dtype == np.float32
    assert 0 <= face.crop.min() and face.crop.max() <= 255 and face.crop.std() > 20
    assert face.method == "yunet" and face.n_faces == 1 and face.score > 0.9
    # YuNet's points go to the template (a 5-point similarity fit leaves a few px residual)...
    moved = face.landmarks @ face.matrix[:, :2].T + face.matrix[:, 2]
    assert np.abs(moved - _template(space)).mean() < 3.0
    # ...and detecting again on the crop itself finds the face where the template says.
    again = aligner.detect(face.crop.round().astype(np.uint8))
    assert len(again) == 1
    assert np.abs(again[0, 4:14].reshape(5, 2) - _template(space)).mean() < 3.0


def test_other_face_spaces_get_their_own_size(aligner, photo):
    space = FaceSpace(template_size=224, margin=0)
    face = FaceAligner(space).align(load_rgb(photo))
    assert face.crop.shape == (224, 224, 3)
    moved = face.landmarks @ face.matrix[:, :2].T + face.matrix[:, 2]
    assert np.abs(moved - _template(space)).mean() < 6.0


def test_center_box_agrees_with_yunet_on_deep_funneled_photos(aligner, lfw_dev):
    people = ["Aaron_Peirsol", "Aaron_Sorkin", "AJ_Cook", "Abdullah_Gul"]
    errors = []
    for name in people:
        photo = sorted((lfw_dev / name).glob("*.jpg"))[0]
        image = load_rgb(photo)
        fixed = FaceAligner(method="center").align(image)
        assert fixed.method == "center" and fixed.score is None
        assert fixed.crop.shape == (144, 144, 3)
        errors.append(np.abs(fixed.landmarks - aligner.align(image).landmarks).mean())
    # The fixed box is an average: single photos are off by a few px, not by a face part.
    assert np.mean(errors) < 5.0, errors


def test_center_crop_scales_with_photo_size(photo):
    image = load_rgb(photo)
    small = cv2.resize(image, (125, 125), interpolation=cv2.INTER_AREA)
    a, b = center_crop(image), center_crop(small)
    np.testing.assert_allclose(a.landmarks / 2, b.landmarks, atol=1e-6)
    assert np.abs(a.crop - b.crop).mean() < 12  # same framing, lower resolution


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_no_face_raises_data_error(aligner, kind):
    rng = np.random.default_rng(0)
    if kind == "grey":
        image = np.full((200, 200, 3), 128, np.uint8)
    else:
        image = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="no face found"):
        aligner.align(image)


def test_several_faces_picks_the_central_one(aligner, lfw_dev, photo):
    canvas = np.full((600, 600, 3), 90, np.uint8)
    canvas[175:425, 175:425] = load_rgb(photo)
    other = load_rgb(sorted((lfw_dev / "Aaron_Sorkin").glob("*.jpg"))[0])
    canvas[:250, 350:600] = other  # same size, in a corner
    face = aligner.align(canvas)
    assert face.n_faces == 2
    assert np.all((face.landmarks > 175) & (face.landmarks < 425))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_other_image_modes_load_as_rgb_and_align(aligner, photo, tmp_path, mode):
    path = tmp_path / f"face_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.open(photo).convert(mode).save(path)
    image = load_rgb(path)
    assert image.shape == (250, 250, 3) and image.dtype == np.uint8
    if mode == "L":
        assert np.array_equal(image[..., 0], image[..., 2])
    assert aligner.align(image).n_faces == 1


def test_exif_orientation_is_applied(photo, tmp_path):
    image = Image.open(photo).crop((0, 0, 250, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_rgb(path).shape == (250, 200, 3)


def test_truncated_jpeg_raises_data_error_naming_the_file(photo, tmp_path):
    path = tmp_path / "cut_short.jpg"
    path.write_bytes(photo.read_bytes()[:3000])
    with pytest.raises(DataError, match="cut_short.jpg"):
        load_rgb(path)


def test_not_an_image_and_missing_file_raise_data_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a photo")
    with pytest.raises(DataError, match="notes.jpg"):
        load_rgb(path)
    with pytest.raises(DataError, match="does not exist"):
        load_rgb(tmp_path / "absent.png")


def test_tiny_image_raises_data_error(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (20, 40)).save(path)
    with pytest.raises(DataError, match="tiny.png.*20 x 40"):
        load_rgb(path)


def test_save_png_round_trips_and_leaves_no_temp_file(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    path = save_png(tmp_path / "sub" / "out.png", image)
    assert np.array_equal(load_rgb(path), image)
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]
    with pytest.raises(DataError, match="uint8"):
        save_png(tmp_path / "bad.png", image.astype(np.float32))


def test_unknown_method_is_rejected():
    with pytest.raises(DataError, match="yunet, mtcnn"):
        FaceAligner(method="dlib")


#: MTCNN on real LFW photos as facenet-pytorch 2.6.0's own ``MTCNN(keep_all=True).detect``
#: gives it (computed once with that package, whose pins do not install beside today's torch):
#: box (x0, y0, x1, y1), score and the 5 landmarks.
MTCNN_REFERENCE = {
    "AJ_Cook/AJ_Cook_0001.jpg": (
        (86.231, 62.628, 180.102, 198.107), 0.99994,
        ((104.31, 114.857), (148.281, 114.081), (117.684, 138.791), (105.167, 161.211),
         (146.519, 161.788)),
    ),
    "Tiger_Woods/Tiger_Woods_0001.jpg": (
        (71.895, 68.469, 172.253, 194.389), 0.99998,
        ((104.444, 112.621), (148.294, 113.111), (127.943, 136.815), (105.247, 162.774),
         (146.786, 161.479)),
    ),
    "Kofi_Annan/Kofi_Annan_0001.jpg": (
        (77.563, 61.761, 169.033, 193.085), 0.99997,
        ((102.571, 113.862), (147.381, 112.01), (126.272, 137.197), (107.073, 162.257),
         (146.415, 161.06)),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def mtcnn_aligner() -> FaceAligner:
    from veilbench.data import mtcnn

    try:
        mtcnn._networks()
    except WeightsError as exc:
        pytest.skip(f"MTCNN weights unavailable: {exc}")
    return FaceAligner(method="mtcnn")


@pytest.mark.parametrize("name", sorted(MTCNN_REFERENCE))
def test_mtcnn_matches_facenet_pytorch_on_real_photos(mtcnn_aligner, lfw_dev, name):
    box, score, points = MTCNN_REFERENCE[name]
    faces = mtcnn_aligner.detect(load_rgb(lfw_dev / name))
    assert len(faces) == 1
    x, y, w, h = faces[0, :4]
    np.testing.assert_allclose([x, y, x + w, y + h], box, atol=0.01)
    np.testing.assert_allclose(faces[0, 4:14].reshape(5, 2), points, atol=0.01)
    assert faces[0, 14] == pytest.approx(score, abs=1e-4)


def test_mtcnn_aligns_onto_the_template_near_yunet(mtcnn_aligner, aligner, photo):
    image = load_rgb(photo)
    face = mtcnn_aligner.align(image)
    assert face.method == "mtcnn" and face.n_faces == 1
    moved = face.landmarks @ face.matrix[:, :2].T + face.matrix[:, 2]
    assert np.abs(moved - _template(mtcnn_aligner.space)).mean() < 3.0
    # The two detectors agree on where the face is, not on the exact points (a few px apart,
    # which is why a model should be fed the landmarks it was trained with).
    gap = np.linalg.norm(face.landmarks - aligner.align(image).landmarks, axis=1)
    assert gap.max() < 10.0
    with pytest.raises(DataError, match="MTCNN"):
        mtcnn_aligner.align(np.full((200, 200, 3), 128, np.uint8))


def test_aligner_is_safe_to_share_between_threads(aligner, lfw_dev):
    from concurrent.futures import ThreadPoolExecutor

    photos = [sorted((lfw_dev / n).glob("*.jpg"))[0] for n in ("AJ_Cook", "Aaron_Sorkin")] * 4
    # Different sizes, so a shared detector's setInputSize would be wrong for some calls.
    images = [cv2.resize(load_rgb(p), (250 + 50 * i,) * 2) for i, p in enumerate(photos)]
    alone = [aligner.align(im).landmarks for im in images]
    with ThreadPoolExecutor(4) as pool:
        shared = list(pool.map(lambda im: aligner.align(im).landmarks, images))
    for a, b in zip(alone, shared, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
