"""The classifier's model files: built, saved with metadata, loaded back, refused when not ours."""
import os
import socket
import urllib.error
import warnings
import zipfile

import numpy as np
import pytest

from train.backend import keras
from train.model import ModelError, build_network, load_classifier, read_metadata, save_model_file
from train.views import RESIZE, resize_face

SIZE = 32  # MobileNetV2's smallest input: keeps these tests fast


@pytest.fixture(scope="module")
def network():
    return build_network(0.35, "none", SIZE, classes=2, seed=0)


def test_the_three_views_of_a_network_share_layers(network):
    images = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    features = network.features(images).numpy()
    assert features.shape == (3, 1280)
    assert np.allclose(network.heads[0](features).numpy(), network.model(images).numpy(), atol=1e-5)


def test_several_heads_start_apart_and_the_model_gives_their_mean():
    network = build_network(0.35, "none", SIZE, classes=2, seed=0, heads=3)
    first_kernels = [head.get_weights()[0] for head in network.heads]
    assert not np.allclose(first_kernels[0], first_kernels[1]) and not np.allclose(first_kernels[1], first_kernels[2])
    rng = np.random.default_rng(1)
    for head in network.heads:  # trained heads disagree; untrained ones all say 0.5 on a random base
        kernel, bias = head.get_weights()[2:]
        head.layers[-1].set_weights([rng.normal(0, 1, kernel.shape), rng.normal(0, 1, bias.shape)])
    images = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    features = network.features(images)
    outputs = np.stack([head(features).numpy() for head in network.heads])
    assert outputs.shape == (3, 4, 2) and not np.allclose(outputs[0], outputs[1], atol=1e-3)
    assert np.allclose(outputs.mean(axis=0), network.model(images).numpy(), atol=1e-5)
    # The first head starts as a one-head network's does: one head is the recipe as it was.
    alone = build_network(0.35, "none", SIZE, classes=2, seed=0)
    assert np.array_equal(alone.heads[0].get_weights()[0], first_kernels[0])
    assert [layer.name for layer in alone.heads[0].layers[1:]] == ["head_dense", "head_dropout", "head_softmax"]


def _saved(network, path):
    save_model_file(network.model, path, {"labels": ["with_mask", "without_mask"], "input_size": SIZE,
                                          "resize": RESIZE})
    return path


def test_saved_model_round_trips_with_its_metadata(network, tmp_path, face_image):
    path = _saved(network, tmp_path / "runs" / "m.keras")
    assert read_metadata(path)["labels"] == ["with_mask", "without_mask"]
    classifier = load_classifier(path)
    assert load_classifier(path) is classifier  # once per process
    faces = [face_image, face_image[40:200, 60:180]]
    probabilities = classifier.predict(faces)
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    direct = network.model(np.stack([resize_face(f, SIZE) for f in faces]).astype(np.float32)).numpy()
    assert np.allclose(probabilities, direct, atol=1e-5)
    assert classifier.predict([]).shape == (0, 2)


def test_faces_given_as_several_views_get_the_mean_of_their_views(brightness_model_path, face_image):
    classifier = load_classifier(brightness_model_path)
    crops = [face_image, face_image[40:200, 60:180], face_image[:60, :60]]
    alone = classifier.predict(crops)
    assert not np.allclose(alone[0], alone[1], atol=1e-3) and not np.allclose(alone[1], alone[2], atol=1e-3)
    views = [np.stack([resize_face(crop, SIZE) for crop in crops[:2]]), resize_face(crops[2], SIZE)[None]]
    assert np.allclose(classifier.predict_views(views), [alone[:2].mean(axis=0), alone[2]], atol=1e-6)
    assert classifier.predict_views([]).shape == (0, 2)


def test_a_model_trained_again_into_the_same_path_is_loaded_again(network, tmp_path):
    path = tmp_path / "m.keras"
    save_model_file(network.model, path, {"labels": ["with_mask", "without_mask"], "input_size": SIZE, "resize": RESIZE})
    first = load_classifier(path)
    save_model_file(network.model, path, {"labels": ["mask", "no_mask"], "input_size": SIZE, "resize": RESIZE})
    stamp = path.stat().st_mtime_ns + 10**9  # as a retraining minutes later would: no two writes in one clock tick
    os.utime(path, ns=(stamp, stamp))
    second = load_classifier(path)
    assert second is not first and second.labels == ["mask", "no_mask"]
    assert load_classifier(path) is second


def test_files_that_are_not_our_models_are_refused(network, tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        read_metadata(tmp_path / "missing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ModelError, match="notes.keras: not a mask classifier"):
        load_classifier(text)
    plain = tmp_path / "plain.keras"
    network.model.save(plain)  # a Keras model, but without our metadata
    with pytest.raises(ModelError, match="plain.keras: not a mask classifier"):
        load_classifier(plain)
    with zipfile.ZipFile(plain, "a") as archive:
        archive.writestr("maskgen.json", '{"format": "something-else"}')
    with pytest.raises(ModelError, match="not a mask classifier"):
        read_metadata(plain)
    with pytest.raises(ModelError, match=r"notes.keras: not a mask detector made by `python -m detect train-detector`"):
        read_metadata(text, "detector")
    with pytest.raises(ModelError, match=r"is a mask classifier, not a mask detector"):
        read_metadata(_saved(network, tmp_path / "classifier.keras"), "detector")


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras 3 notice on its own weights files
def test_weights_that_do_not_fit_the_width_are_named(tmp_path):
    weights = tmp_path / "narrow.weights.h5"
    keras().applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False,
                                     weights=None, pooling="avg").save_weights(weights)
    assert build_network(0.35, str(weights), SIZE, 2).base is not None
    with warnings.catch_warnings(record=True) as caught, \
            pytest.raises(ModelError, match=r"narrow.weights.h5: does not fit MobileNetV2 alpha 0.5; it was made "
                                            r"for alpha 0.35$"):
        warnings.simplefilter("always")
        build_network(0.5, str(weights), SIZE, 2)
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []  # the one line is all
    with pytest.raises(ModelError, match="weights file not found"):
        build_network(0.35, str(tmp_path / "nowhere.h5"), SIZE, 2)
    (tmp_path / "text.weights.h5").write_text("not weights")
    with pytest.raises(ModelError, match=r"text.weights.h5: not a Keras weights file \("):
        build_network(0.35, str(tmp_path / "text.weights.h5"), SIZE, 2)
    with pytest.raises(ModelError, match="widths"):
        build_network(0.4, "none", SIZE, 2)


def test_imagenet_weights_that_cannot_be_downloaded_are_one_clear_error(monkeypatch):
    def offline(**kwargs):
        # What Keras does when the download fails: a bare Exception raised while handling the URLError.
        try:
            raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
        except urllib.error.URLError as error:
            raise Exception(f"URL fetch failure on https://storage.googleapis.com/...: None -- {error.reason}")

    monkeypatch.setattr(keras().applications, "MobileNetV2", offline)
    with pytest.raises(ModelError, match=r"ImageNet weights of MobileNetV2 alpha 1.0 could not be downloaded "
                                         r"\(\[Errno -2\] Name or service not known\); .* --weights"):
        build_network(1.0, "imagenet", SIZE, 2)

    def broken(**kwargs):
        raise Exception("something else")

    monkeypatch.setattr(keras().applications, "MobileNetV2", broken)
    with pytest.raises(Exception, match="something else"):  # only a failed download is reworded
        build_network(1.0, "imagenet", SIZE, 2)


def test_the_head_learns_from_cached_features(network):
    from train.fit import Recipe, train_head
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (2, 1280)).astype(np.float32)
    labels = rng.integers(0, 2, 400)
    features = (centres[labels] + rng.normal(0, 2.0, (400, 1280))).astype(np.float32)
    history = train_head(network.heads[0], features[:300], labels[:300], features[300:], labels[300:],
                         Recipe(epochs=8, batch_size=32), images_per_epoch=300, seed=0, progress=False)
    assert len(history["loss"]) == 8 and history["loss"][-1] < history["loss"][0] / 2
    assert history["val_accuracy"][-1] > 0.95


def test_labels_count_alike_however_many_faces_each_has():
    from train.fit import Recipe, class_weights, train_head

    assert class_weights(np.array([0, 1, 0, 1])) is None  # balanced, as a generated dataset is
    assert class_weights(np.array([0, 0, 0, 1])) == pytest.approx({0: 4 / 6, 1: 4 / 2})
    assert class_weights(np.array([0, 0, 2])) == pytest.approx({0: 3 / 4, 2: 3 / 2})  # label 1 has no faces
    # Features that tell nothing: a head can only learn how often each label comes. Nine unmasked
    # faces to each masked one must not teach it that a face is nine times likelier unmasked.
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (1, 1280)).repeat(400, axis=0).astype(np.float32)
    labels = (np.arange(400) % 10 == 0).astype(np.int64)
    head = build_network(0.35, "none", SIZE, classes=2, seed=0).heads[0]
    train_head(head, features, labels, features[:0], labels[:0], Recipe(epochs=6, batch_size=32),
               images_per_epoch=400, seed=0, progress=False)
    assert float(np.asarray(head(features[:1], training=False))[0, 1]) == pytest.approx(0.5, abs=0.1)


def test_features_saved_in_chunks_spare_an_interrupted_run_the_work_it_did(network, tmp_path, monkeypatch):
    from train import features
    from train.backend import tf

    monkeypatch.setattr(features, "CHUNK_BATCHES", 2)  # chunks of 4 views at 2 a batch: 10 views in 3 chunks
    rendered = []

    def render(views):
        rendered.append(len(views))
        shades = np.array([10.0 * index + number for index, number in views], np.float32)
        images = np.broadcast_to(shades[:, None, None, None], (len(views), SIZE, SIZE, 3)).copy()
        return tf().data.Dataset.from_tensor_slices(images).batch(2)

    views = [(index, number) for number in range(2) for index in range(5)]
    store = tmp_path / "store"
    whole = features.compute_features(network.features, render, views, 2, "test", store, progress=False)
    assert whole.shape == (10, 1280) and rendered == [4, 4, 2]
    assert sorted(p.name for p in store.iterdir()) == ["00000.npy", "00001.npy", "00002.npy"]

    # An interrupted run: its last chunk never written, its second one cut short.
    (store / "00002.npy").unlink()
    (store / "00001.npy").write_bytes((store / "00001.npy").read_bytes()[:100])
    rendered.clear()
    again = features.compute_features(network.features, render, views, 2, "test", store, progress=False)
    assert rendered == [4, 2]  # only the missing and the damaged chunk were computed
    assert np.array_equal(again, whole)
    plain = features.compute_features(network.features, render, views, 2, "test", None, progress=False)
    assert np.allclose(plain, whole, atol=1e-6)
