"""Chest X-ray data: the synthetic generator (ground truth, shortcut tags) and the loaders for the
real formats, on small files written here in those formats."""
import warnings

import numpy as np
import pytest
from PIL import Image

from gradcam_helpers.course import xray
from gradcam_helpers.course.xray import (
    CLASS_NAMES,
    XrayData,
    load_dicom,
    load_kaggle_folder,
    load_medmnist_npz,
    load_xray_dataset,
    make_xrays,
    read_grayscale,
)
from gradcam_helpers.evaluation.diagnose import corner_mask


@pytest.fixture(scope="module")
def tagged():
    return make_xrays(400, 64, seed=5, shortcut_rate=0.9)


# --------------------------------------------------------------------------------------------
# synthetic

def test_shapes_types_and_ranges(tagged):
    d = tagged
    assert isinstance(d, XrayData) and len(d) == 400 and d.size == (64, 64)
    assert d.images.shape == (400, 1, 64, 64) and d.images.dtype == np.float32
    assert 0 <= d.images.min() and d.images.max() <= 1
    assert d.labels.dtype == np.int64 and np.bincount(d.labels).tolist() == [200, 200]
    for masks in (d.lung_masks, d.lesion_masks, d.tag_masks):
        assert masks.shape == (400, 64, 64) and masks.dtype == bool
    assert d.class_names == CLASS_NAMES == ("NORMAL", "PNEUMONIA")
    assert d.images_hw.shape == (400, 64, 64) and d.images_nhwc.shape == (400, 64, 64, 1)
    # patients differ: no two images alike, contrast varies
    assert np.std(d.images.mean(axis=(1, 2, 3))) > 0.01


def test_deterministic_by_seed():
    a, b = make_xrays(20, 48, seed=1), make_xrays(20, 48, seed=1)
    c = make_xrays(20, 48, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.lesion_masks, b.lesion_masks)
    assert not np.array_equal(a.images, c.images)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_anatomy_lungs_and_lesions(tagged):
    d = tagged
    normal, pneu = d.labels == 0, d.labels == 1
    lung_share = d.lung_masks.mean(axis=(1, 2))
    assert (lung_share > 0.12).all() and (lung_share < 0.5).all()
    # both lungs: mass on each side of the midline
    assert (d.lung_masks[:, :, :32].sum((1, 2)) > 50).all()
    assert (d.lung_masks[:, :, 32:].sum((1, 2)) > 50).all()
    # lungs are darker than the rest of the body
    img = d.images_hw
    lung_mean = (img * d.lung_masks).sum((1, 2)) / d.lung_masks.sum((1, 2))
    centre = img[:, 40:56, 28:36].mean((1, 2))  # heart / spine below the hila
    assert (lung_mean < centre).mean() > 0.95
    # lesions only in PNEUMONIA images, always inside the lungs
    assert not d.lesion_masks[normal].any()
    assert d.lesion_masks[pneu].any(axis=(1, 2)).all()
    assert not (d.lesion_masks & ~d.lung_masks).any()
    # an opacity brightens the lung where it is
    les = d.lesion_masks[pneu]
    rest = d.lung_masks[pneu] & ~les
    inside = (img[pneu] * les).sum((1, 2)) / les.sum((1, 2))
    outside = (img[pneu] * rest).sum((1, 2)) / rest.sum((1, 2))
    assert (inside > outside).mean() > 0.9
    # varied size: lesion areas spread over a wide range
    area = les.sum((1, 2))
    assert area.max() > 3 * area.min()


def test_shortcut_rate_and_modes():
    n = 1000
    cor = make_xrays(n, 32, seed=0, shortcut_rate=0.9)
    pneu, normal = cor.labels == 1, cor.labels == 0
    assert abs(cor.has_tag[pneu].mean() - 0.9) < 0.05
    assert abs(cor.has_tag[normal].mean() - 0.1) < 0.05
    flip = make_xrays(n, 32, seed=0, shortcut_rate=0.9, tag_mode="flipped")
    assert abs(flip.has_tag[pneu].mean() - 0.1) < 0.05
    assert abs(flip.has_tag[normal].mean() - 0.9) < 0.05
    gone = make_xrays(n, 32, seed=0, shortcut_rate=0.9, tag_mode="removed")
    assert not gone.has_tag.any() and not gone.tag_masks.any()
    none = make_xrays(50, 32, seed=0)
    assert not none.has_tag.any()
    always = make_xrays(100, 32, seed=0, shortcut_rate=1.0)
    assert always.has_tag.tolist() == (always.labels == 1).tolist()
    # has_tag and tag_masks agree
    assert (cor.tag_masks.any(axis=(1, 2)) == cor.has_tag).all()


def test_modes_keep_the_same_patients(tagged):
    gone = make_xrays(400, 64, seed=5, shortcut_rate=0.9, tag_mode="removed")
    np.testing.assert_array_equal(gone.labels, tagged.labels)
    np.testing.assert_array_equal(gone.lesion_masks, tagged.lesion_masks)
    diff = tagged.images_hw != gone.images_hw
    # images differ exactly where a tag was burned in, nowhere else
    assert not (diff & ~tagged.tag_masks).any()
    assert diff[tagged.has_tag].any(axis=(1, 2)).all()


@pytest.mark.parametrize("corner", xray.CORNERS)
def test_tag_sits_in_its_corner_and_is_visible(corner):
    d = make_xrays(30, 64, seed=0, shortcut_rate=1.0, tag_corner=corner)
    tags = d.tag_masks[d.has_tag]
    assert len(tags) == 15
    corners = corner_mask((64, 64), 0.2)
    assert not (tags & ~corners).any()
    rows = slice(0, 32) if corner.startswith("top") else slice(32, 64)
    cols = slice(0, 32) if corner.endswith("left") else slice(32, 64)
    assert tags[:, rows, cols].all(axis=0).sum() > 0  # the same quadrant every time
    letters = d.images_hw[d.has_tag][tags] > 0.9
    assert 0.2 < letters.mean() < 0.7  # bright strokes on a dark box: text-like


def test_random_corner_uses_several_corners():
    d = make_xrays(40, 64, seed=0, shortcut_rate=1.0, tag_corner="random")
    tl = d.tag_masks[d.has_tag][:, :16, :16].any(axis=(1, 2))
    assert 0 < tl.sum() < len(tl)


def test_tag_helpers():
    bitmap = xray.tag_bitmap("AP", scale=2)
    assert bitmap.shape == (14, 18) and bitmap.any() and not bitmap.all()
    with pytest.raises(ValueError, match="glyph"):
        xray.tag_bitmap("Z")
    img = np.zeros((64, 64), np.float32)
    out, mask = xray.burn_tag(img, "bottom-right")
    assert mask[-10:, -20:].any() and not mask[:32].any()
    assert not img.any()  # the input is not modified


def test_benign_objects_only_outside_the_lungs():
    plain = make_xrays(40, 64, seed=3, objects=(0, 0))
    busy = make_xrays(40, 64, seed=3, objects=(2, 3))
    np.testing.assert_array_equal(plain.lesion_masks, busy.lesion_masks)  # same patients
    diff = np.abs(busy.images_hw - plain.images_hw) > 0.05
    assert diff.any(axis=(1, 2)).mean() > 0.9                # objects were drawn...
    from scipy import ndimage

    inner = np.stack([ndimage.binary_erosion(m, iterations=2) for m in plain.lung_masks])
    assert not (diff & inner).any()       # ...never over the lungs (the final blur leaks ~1 px)
    for label in (0, 1):                                      # ...in both classes
        assert diff[plain.labels == label].any()


def test_opacity_texture():
    smooth = make_xrays(60, 64, seed=4, mottling=0.0, bronchograms=0.0)
    patchy = make_xrays(60, 64, seed=4)
    np.testing.assert_array_equal(smooth.lesion_masks, patchy.lesion_masks)
    pneu = np.flatnonzero(smooth.labels == 1)
    spread = [(patchy.images_hw[i][patchy.lesion_masks[i]].std(),
               smooth.images_hw[i][smooth.lesion_masks[i]].std()) for i in pneu]
    assert np.mean([a > b for a, b in spread]) > 0.8        # patchier inside the opacity
    # outside the opacities both versions are the same image
    outside = ~smooth.lesion_masks[pneu]
    close = np.abs(patchy.images_hw[pneu] - smooth.images_hw[pneu]) < 0.03
    assert close[outside].mean() > 0.95


@pytest.mark.parametrize("kwargs", [dict(size=16), dict(shortcut_rate=1.5),
                                    dict(tag_mode="moved"), dict(tag_corner="middle"),
                                    dict(pneumonia_fraction=2.0), dict(max_lesions=5),
                                    dict(objects=(3, 1))])
def test_bad_generator_arguments(kwargs):
    with pytest.raises(ValueError):
        make_xrays(4, **{"size": 32, **kwargs})


def test_subset_and_repr(tagged):
    sub = tagged.subset(tagged.labels == 1)
    assert len(sub) == 200 and (sub.labels == 1).all() and sub.lesion_masks.shape[0] == 200
    assert "PNEUMONIA=200" in repr(sub)


# --------------------------------------------------------------------------------------------
# image files and the Kaggle layout

def save_gray(path, value, size=(40, 30), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full(size[::-1], value, dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)


@pytest.fixture
def kaggle_root(tmp_path):
    """NORMAL images are dark (40), PNEUMONIA images bright (200): a label can be checked
    against the content."""
    root = tmp_path / "chest_xray"
    for split, per_class in (("train", 4), ("val", 2), ("test", 3)):
        for k in range(per_class):
            save_gray(root / split / "NORMAL" / f"IM-{k:04d}.jpeg", 40)
            save_gray(root / split / "PNEUMONIA" / f"person{k}_bacteria_{k}.jpeg", 200)
    (root / "train" / "NORMAL" / ".DS_Store").write_bytes(b"\x00\x01junk")
    return root


def test_kaggle_layout_labels_follow_folders(kaggle_root):
    d = load_kaggle_folder(kaggle_root, "train", size=32)
    assert d.source == "kaggle" and d.images.shape == (8, 1, 32, 32)
    assert d.labels.tolist() == [0] * 4 + [1] * 4
    bright = d.images.mean(axis=(1, 2, 3)) > 0.5
    assert (bright == (d.labels == 1)).all()
    assert d.lung_masks is None and d.lesion_masks is None
    assert len(load_kaggle_folder(kaggle_root, "test", size=16)) == 6
    # the zip's extra chest_xray/ level is found from its parent as well
    assert len(load_kaggle_folder(kaggle_root.parent, "val", size=16)) == 4


def test_kaggle_max_per_class_is_balanced_and_seeded(kaggle_root):
    a = load_kaggle_folder(kaggle_root, "train", size=16, max_per_class=2, seed=0)
    b = load_kaggle_folder(kaggle_root, "train", size=16, max_per_class=2, seed=0)
    assert a.labels.tolist() == [0, 0, 1, 1] and a.info["files"] == b.info["files"]


def test_kaggle_folder_without_class_folders(tmp_path):
    save_gray(tmp_path / "train" / "img1.jpeg", 100)
    save_gray(tmp_path / "train" / "healthy" / "img2.jpeg", 100)
    with pytest.raises(FileNotFoundError, match="NORMAL"):
        load_kaggle_folder(tmp_path, "train")


def test_kaggle_missing_split_and_empty_class(tmp_path, kaggle_root):
    with pytest.raises(FileNotFoundError, match="no 'train' folder"):
        load_kaggle_folder(tmp_path / "nowhere", "train")
    (kaggle_root / "extra" / "NORMAL").mkdir(parents=True)
    (kaggle_root / "extra" / "PNEUMONIA").mkdir(parents=True)
    save_gray(kaggle_root / "extra" / "PNEUMONIA" / "a.jpeg", 200)
    with pytest.raises(FileNotFoundError, match="no image files"):
        load_kaggle_folder(kaggle_root, "extra")


def test_kaggle_extra_class_folder_warns_and_is_ignored(kaggle_root):
    save_gray(kaggle_root / "train" / "COVID19" / "c.jpeg", 120)
    with pytest.warns(UserWarning, match="COVID19"):
        d = load_kaggle_folder(kaggle_root, "train", size=16)
    assert len(d) == 8


def test_corrupt_image_names_the_file(kaggle_root):
    bad = kaggle_root / "train" / "PNEUMONIA" / "broken.jpeg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="broken.jpeg"):
        load_kaggle_folder(kaggle_root, "train", size=16)


def test_read_grayscale_16bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.full((20, 30), 40000, dtype=np.uint16)
    arr[:, :10] = 1000
    Image.fromarray(arr).save(tmp_path / "deep.png")
    img = read_grayscale(tmp_path / "deep.png")
    assert img.dtype == np.float32 and img.shape == (20, 30)
    np.testing.assert_allclose(img[0, 20], 40000 / 65535, atol=1e-4)
    np.testing.assert_allclose(img[0, 0], 1000 / 65535, atol=1e-4)


def test_read_grayscale_rgba_composites_over_black(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :10, 3] = 255   # left half opaque grey
    rgba[:, 10:, 3] = 0     # right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    img = read_grayscale(tmp_path / "alpha.png")
    np.testing.assert_allclose(img[:, :10], 200 / 255, atol=1e-3)
    np.testing.assert_allclose(img[:, 10:], 0, atol=1e-3)


def test_read_grayscale_rgb_palette_and_resize(tmp_path):
    save_gray(tmp_path / "rgb.png", 128, mode="RGB")
    save_gray(tmp_path / "pal.png", 128, mode="P")
    for name in ("rgb.png", "pal.png"):
        img = read_grayscale(tmp_path / name, size=24)
        assert img.shape == (24, 24)
        np.testing.assert_allclose(img, 128 / 255, atol=2e-3)


# --------------------------------------------------------------------------------------------
# MedMNIST

def write_npz(path, n=(6, 2, 4), size=28, drop=(), labels_override=None):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        labels = (np.arange(k) % 2).reshape(k, 1).astype(np.uint8)
        images = np.where(labels[:, :, None] == 1, 220, 30).astype(np.uint8) \
            * np.ones((k, size, size), np.uint8)
        images = images + rng.integers(0, 5, images.shape, dtype=np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    if labels_override is not None:
        arrays["train_labels"] = labels_override
    for key in drop:
        arrays.pop(key)
    np.savez(path, **arrays)
    return path


def test_medmnist_npz(tmp_path):
    path = write_npz(tmp_path / "pneumoniamnist.npz")
    d = load_medmnist_npz(path, "train")
    assert d.source == "medmnist" and d.images.shape == (6, 1, 28, 28)
    assert d.images.dtype == np.float32 and 0 <= d.images.min() and d.images.max() <= 1
    assert d.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert ((d.images.mean(axis=(1, 2, 3)) > 0.5) == (d.labels == 1)).all()
    d = load_medmnist_npz(path, "test", size=64)
    assert d.images.shape == (4, 1, 64, 64)


def test_medmnist_missing_keys_lists_what_is_there(tmp_path):
    path = write_npz(tmp_path / "p.npz", drop=("val_labels",))
    with pytest.raises(KeyError, match="val_labels") as err:
        load_medmnist_npz(path, "val")
    assert "train_images" in str(err.value)


def test_medmnist_bad_labels(tmp_path):
    path = write_npz(tmp_path / "p.npz", labels_override=np.array([[0], [1], [2], [0], [1], [0]]))
    with pytest.raises(ValueError, match=r"\[2\]"):
        load_medmnist_npz(path, "train")
    path = write_npz(tmp_path / "q.npz", labels_override=np.zeros((4, 1), np.uint8))
    with pytest.raises(ValueError, match="one label per image"):
        load_medmnist_npz(path, "train")


# --------------------------------------------------------------------------------------------
# DICOM

def write_dicom(path, pixels, photometric="MONOCHROME2", window=None, rescale=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    ds.save_as(path, enforce_file_format=True)
    return path


RAMP = np.tile(np.linspace(0, 4000, 16).astype(np.uint16), (8, 1))


def test_dicom_window_and_range(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", RAMP, window=(2000, 2001))
    img = load_dicom(path)
    assert img.dtype == np.float32 and img.shape == (8, 16)
    assert img[0, 0] == pytest.approx(0, abs=1e-3) and img[0, -1] == pytest.approx(1, abs=1e-3)
    assert np.all(np.diff(img[0]) >= 0)  # MONOCHROME2: larger value = brighter
    # a narrow window saturates both ends; the override beats the file's window
    narrow = load_dicom(path, window=(2000, 801))
    assert (narrow[0, :5] == 0).all() and (narrow[0, -5:] == 1).all()
    # DICOM LINEAR: (x - (c - 0.5)) / (w - 1) + 0.5
    assert narrow[0, 7] == pytest.approx((RAMP[0, 7] - 1999.5) / 800 + 0.5, abs=1e-4)


def test_dicom_monochrome1_is_inverted(tmp_path):
    m2 = load_dicom(write_dicom(tmp_path / "m2.dcm", RAMP, window=(2000, 4001)))
    m1 = load_dicom(write_dicom(tmp_path / "m1.dcm", RAMP, "MONOCHROME1", window=(2000, 4001)))
    np.testing.assert_allclose(m1, 1 - m2, atol=1e-6)
    assert m1[0, 0] > m1[0, -1]


def test_dicom_rescale_and_no_window(tmp_path):
    # without a window the image's own range is used
    plain = load_dicom(write_dicom(tmp_path / "p.dcm", RAMP))
    assert plain.min() == 0 and plain.max() == pytest.approx(1)
    # the window applies to rescaled values (slope 2, intercept -1000: 0..4000 -> -1000..7000)
    scaled = load_dicom(write_dicom(tmp_path / "s.dcm", RAMP, window=(3000, 2001),
                                    rescale=(2, -1000)))
    assert scaled[0, 0] == 0 and scaled[0, -1] == 1
    assert scaled[0, 8] == pytest.approx((2 * RAMP[0, 8] - 1000 - 2999.5) / 2000 + 0.5, abs=1e-4)
    resized = load_dicom(tmp_path / "p.dcm", size=32)
    assert resized.shape == (32, 32)


def test_non_dicom_file_is_a_clear_error(tmp_path):
    fake = tmp_path / "scan.dcm"
    save_gray(fake.with_suffix(".png"), 100)
    fake.write_bytes(fake.with_suffix(".png").read_bytes())
    with pytest.raises(ValueError, match="not a DICOM file"):
        load_dicom(fake)


def test_real_radiograph_from_pydicom_data():
    try:
        path = xray.example_radiograph_path()
    except FileNotFoundError:
        pytest.skip("pydicom-data is not installed")
    import pydicom

    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    img = xray.load_example_radiograph(size=128)
    assert img.shape == (128, 128) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 1
    # displayed correctly, the spine/mediastinum (centre) is brighter than the lungs (sides)
    centre = img[30:90, 58:70].mean()
    lungs = np.concatenate([img[30:90, 25:45], img[30:90, 85:105]]).mean()
    assert centre > lungs + 0.1
    # the raw stored values run the other way round: MONOCHROME1 must be inverted
    raw = np.asarray(Image.fromarray(ds.pixel_array.astype(np.float32)).resize((128, 128)))
    assert raw[30:90, 58:70].mean() < np.concatenate([raw[30:90, 25:45], raw[30:90, 85:105]]).mean()


# --------------------------------------------------------------------------------------------
# the notebook's switch

def test_load_xray_dataset_switch(tmp_path, kaggle_root):
    train = load_xray_dataset("synthetic", n=20, size=32)
    test = load_xray_dataset("synthetic", split="test", n=20, size=32)
    assert train.source == "synthetic" and not np.array_equal(train.images, test.images)
    tagged = load_xray_dataset("synthetic", n=20, size=32, shortcut_rate=1.0)
    assert tagged.has_tag.sum() == 10
    k = load_xray_dataset("kaggle", kaggle_root, split="val", size=16)
    assert k.source == "kaggle" and len(k) == 4
    npz = write_npz(tmp_path / "p.npz")
    m = load_xray_dataset("medmnist", npz, split="test", size=32)
    assert m.source == "medmnist" and m.images.shape == (4, 1, 32, 32)
    with pytest.raises(ValueError, match="path="):
        load_xray_dataset("kaggle")
    with pytest.raises(ValueError, match="source"):
        load_xray_dataset("nih", tmp_path)
    with pytest.raises(TypeError, match="shortcut_rate"):
        load_xray_dataset("kaggle", kaggle_root, shortcut_rate=0.9)
    with pytest.raises(ValueError, match="synthetic"):
        load_xray_dataset("synthetic", path=tmp_path)


def test_no_warning_on_clean_kaggle_folder(kaggle_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_kaggle_folder(kaggle_root, "val", size=16)


def test_paths_with_tilde_are_expanded(kaggle_root, monkeypatch):
    monkeypatch.setenv("HOME", str(kaggle_root.parent))
    assert len(load_kaggle_folder("~/chest_xray", "val", size=16)) == 4


# ------------------------------------------------------------------ options for lesson 07's patterns


@pytest.mark.parametrize("side", xray.LESION_SIDES)
def test_lesions_on_one_side(side):
    data = xray.make_xrays(40, 64, seed=3, lesion_side=side)
    pos = data.labels == 1
    cols = np.arange(64) + 0.5
    for mask in data.lesion_masks[pos]:
        assert mask.any()
        centre = cols[mask.any(axis=0)].mean()
        assert (centre < 32) if side == "left" else (centre > 32), centre
    # the same patients with lesions anywhere: the NORMAL images are identical
    anywhere = xray.make_xrays(40, 64, seed=3)
    assert np.array_equal(anywhere.images[~pos], data.images[~pos])


def test_abdomen_tag_is_outside_the_lungs_and_the_corners():
    data = xray.make_xrays(60, 64, seed=4, shortcut_rate=1.0, tag_corner="abdomen")
    corners = corner_mask((64, 64), 0.2)
    tagged = np.flatnonzero(data.has_tag)
    assert len(tagged) == 30 and np.all(data.labels[tagged] == 1)
    centres = []
    for i in tagged:
        tag, lungs = data.tag_masks[i], data.lung_masks[i]
        assert tag.any() and not (tag & lungs).any() and not (tag & corners).any()
        rows, cols = np.nonzero(tag)
        assert rows.min() > np.nonzero(lungs)[0].max()          # below the lungs
        centres.append(cols.mean())
    centres = np.array(centres)
    assert (centres < 32).any() and (centres > 32).any()        # on neither side on average


def test_abdomen_tag_needs_the_lung_mask():
    with pytest.raises(ValueError, match="lung_mask"):
        xray.burn_tag(np.zeros((64, 64), np.float32), "abdomen")


def test_grid_shortcut_lines_the_whole_frame_of_the_cued_images_only():
    plain = xray.make_xrays(40, 64, seed=5)
    data = xray.make_xrays(40, 64, seed=5, shortcut="grid", shortcut_rate=1.0)
    cued = data.has_tag
    assert np.array_equal(cued, data.labels == 1) and cued.sum() == 20
    assert data.tag_masks[cued].all() and not data.tag_masks[~cued].any()
    # the NORMAL images are the same patients without lines; the PNEUMONIA ones differ by the
    # lines alone: +contrast on two columns of every four (less where clipped at 1), 0 elsewhere
    assert np.array_equal(data.images[~cued], plain.images[~cued])
    diff = data.images[cued, 0] - plain.images[cued, 0]
    lined = (np.arange(64) % xray.GRID_PERIOD) < xray.GRID_PERIOD // 2
    assert np.all(diff[..., ~lined] == 0)
    assert np.all((diff[..., lined] >= -1e-6) & (diff[..., lined] <= 0.04 + 1e-6))
    assert np.median(diff[..., lined]) == pytest.approx(0.04, abs=1e-6)
    assert data.images.min() >= 0 and data.images.max() <= 1
    # flipped: the lines go with NORMAL
    flipped = xray.make_xrays(40, 64, seed=5, shortcut="grid", shortcut_rate=1.0,
                              tag_mode="flipped")
    assert np.array_equal(flipped.has_tag, flipped.labels == 0)


def test_grid_lines_checks_its_input():
    with pytest.raises(ValueError, match="contrast"):
        xray.grid_lines(np.zeros((8, 8), np.float32), contrast=0)
    with pytest.raises(ValueError, match="one"):
        xray.grid_lines(np.zeros((1, 8, 8), np.float32))


@pytest.mark.parametrize("kwargs", [dict(lesion_side="middle"), dict(tag_corner="shoulder"),
                                    dict(shortcut="noise"), dict(grid_contrast=1.5),
                                    dict(grid_contrast=0.0)])
def test_bad_pattern_options(kwargs):
    with pytest.raises(ValueError):
        xray.make_xrays(4, 64, **kwargs)
