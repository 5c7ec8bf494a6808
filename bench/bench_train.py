"""Trainer benchmark: does a classifier trained only on generated masks work on real masked people?

    python bench/bench_train.py [--shared ../shared] [--out build/bench_train] [--epochs 20]

In one invocation, on the shared development data, it
1. generates a dataset from ``data/raw`` with the built-in styles (default settings), trains our
   recipe on it with ``weights/`` (MobileNetV2 alpha 0.35) and evaluates on ``data/real_dev``;
2. trains the same recipe on the older generator's output (``anchor_generated/with_mask`` as
   with_mask, ``raw`` as without_mask) and evaluates it on ``real_dev`` the same way;
3. trains the seeds' naive recipe on the data of (1) for the same number of epochs: Keras ``fit``
   over images augmented on the fly (flip, rotation, zoom, shift), the whole network run forward
   every epoch, images resized to 224 by nearest neighbour as ``load_img`` does; it is timed
   against our cached phase and evaluated on ``real_dev`` too.
It prints accuracy per class and per subgroup of ``real_dev`` (tight face crops, named by digits,
against wider web photos of people) side by side, and the training time ratio. Figures go to
stdout and OUT/results.json; each model's run folder and error sheets go to OUT.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from augment.dataset import Settings  # noqa: E402
from augment.generate import generate  # noqa: E402
from train.backend import keras, tf  # noqa: E402
from train.data import load_samples  # noqa: E402
from train.evaluate import evaluate, write_report  # noqa: E402
from train.features import decode_images  # noqa: E402
from train.fit import Recipe, fit  # noqa: E402
from train.metrics import classification_report  # noqa: E402
from train.model import base_network  # noqa: E402

WEIGHTS = "weights/mobilenet_v2_0.35_224_no_top.weights.h5"


def subgroup(path: str) -> str:
    """real_dev's two kinds of photo: RMFD-style tight face crops (named by digits, small) and web photos."""
    with Image.open(path) as image:
        longest = max(image.size)
    return "tight crop" if Path(path).name[0].isdigit() and longest < 500 else "web photo"


def subgroup_table(report: dict) -> dict:
    """Accuracy per (label, subgroup) from an evaluation's per-image predictions."""
    table = {}
    for prediction in report["predictions"]:
        key = f"{prediction['label']} / {subgroup(prediction['path'])}"
        right, total = table.get(key, (0, 0))
        table[key] = (right + (prediction["label"] == prediction["predicted"]), total + 1)
    return {key: {"accuracy": right / total, "n": total} for key, (right, total) in sorted(table.items())}


def older_generator_set(shared: Path, out: Path) -> Path:
    """anchor_generated/with_mask + raw as without_mask, linked (not copied) into one labelled folder."""
    folder = out / "anchor_set"
    for label, source in (("with_mask", shared / "data/anchor_generated/with_mask"),
                          ("without_mask", shared / "data/raw")):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for path in sorted(source.iterdir()):
            link = folder / label / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    return folder


def naive_baseline(data: Path, epochs: int, weights: str, labels_expected: list[str]) -> tuple[float, object]:
    """The seeds' recipe, timed: frozen base, small head, Keras fit over on-the-fly augmented images."""
    samples, labels, _ = load_samples(data)
    assert labels == labels_expected
    train = [s for s in samples if s.split == "train"]
    images, _ = decode_images([s.path for s in train], progress=False)
    resized = np.stack([tf().image.resize(image, (224, 224), method="nearest").numpy() for image in images])
    targets = np.array([labels.index(s.label) for s in train])
    layers = keras().layers
    inputs = layers.Input((224, 224, 3))
    augmented = keras().Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(20 / 360),
                                    layers.RandomZoom(0.15), layers.RandomTranslation(0.2, 0.2)])(inputs)
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0)(augmented)
    base = base_network(0.35, weights, 224, scaled)
    base.trainable = False
    hidden = layers.Dropout(0.5)(layers.Dense(128, activation="relu")(base.output))
    model = keras().Model(inputs, layers.Dense(len(labels), activation="softmax")(hidden))
    model.compile(optimizer=keras().optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(resized.astype(np.float32), targets, batch_size=32, epochs=epochs, verbose=0)
    return time.perf_counter() - started, model


def naive_on_real(model, real: Path, labels: list[str]) -> dict:
    """The naive model on real_dev, each photo resized the naive way (nearest neighbour)."""
    samples, _, _ = load_samples(real)
    images, _ = decode_images([s.path for s in samples], progress=False)
    kept = [(s, image) for s, image in zip(samples, images) if image is not None]
    batch = np.stack([tf().image.resize(image, (224, 224), method="nearest").numpy() for _, image in kept])
    predicted = np.concatenate([model(batch[i:i + 64].astype(np.float32), training=False).numpy()
                                for i in range(0, len(batch), 64)]).argmax(axis=1)
    true = np.array([labels.index(s.label) for s, _ in kept])
    report = classification_report(true, predicted, labels)
    report["predictions"] = [{"path": str(s.path), "label": s.label, "predicted": labels[p]}
                             for (s, _), p in zip(kept, predicted)]
    return report


def row(name: str, report: dict) -> str:
    recalls = "  ".join(f"{values['recall']:6.1%}" for values in report["per_class"].values())
    groups = "  ".join(f"{v['accuracy']:6.1%} ({v['n']})" for v in subgroup_table(report).values())
    return f"{name:<34} {report['accuracy']:6.1%}  {recalls}    {groups}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--out", type=Path, default=PROJECT / "build/bench_train")
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    args = parser.parse_args()
    shared, out = args.shared.resolve(), args.out
    weights, real = str(shared / WEIGHTS), shared / "data/real_dev"
    recipe = Recipe(weights=weights, alpha=0.35, epochs=args.epochs)
    results: dict = {"recipe": recipe.__dict__}

    clock = time.perf_counter()
    generated = out / "generated"
    shutil.rmtree(generated, ignore_errors=True)  # a fresh dataset every run, made with today's styles
    generate(shared / "data/raw", generated, [PROJECT / "mask_images"], Settings(), progress=False)
    results["generate_s"] = round(time.perf_counter() - clock, 1)

    reports = {}
    for name, data in (("ours", generated), ("older generator", older_generator_set(shared, out))):
        model = out / name.replace(" ", "_") / "model.keras"
        summary = fit(data, model, recipe, progress=False)
        reports[name] = evaluate(model, real, errors=model.with_suffix("") / "real_dev_errors.png", progress=False)
        write_report(reports[name], model.with_suffix("") / "real_dev.json")
        results[name] = {"timings": summary["timings"], "images": summary["images"],
                         "validation_accuracy": summary["metrics"].get("val", {}).get("accuracy"),
                         "real_dev": {k: reports[name][k] for k in ("n", "accuracy", "per_class", "confusion")},
                         "subgroups": subgroup_table(reports[name])}
        print(f"{name}: trained in {summary['timings']['total_s']:.0f} s {summary['timings']}; "
              f"generated-val accuracy {results[name]['validation_accuracy']:.1%}", flush=True)

    labels = reports["ours"]["labels"]
    naive_seconds, naive_model = naive_baseline(generated, args.epochs, weights, labels)
    reports["naive recipe (ours data)"] = naive_on_real(naive_model, real, labels)
    ours = results["ours"]["timings"]
    cached = ours["features_s"] + ours["head_s"]
    results["naive"] = {"fit_s": round(naive_seconds, 1), "epochs": args.epochs,
                        "real_dev": {k: reports["naive recipe (ours data)"][k] for k in ("n", "accuracy", "per_class")},
                        "ratio_head_only": round(naive_seconds / ours["head_s"], 1),
                        "ratio_features_and_head": round(naive_seconds / cached, 2)}

    groups = "  ".join(f"{key:>18}" for key in subgroup_table(reports["ours"]))
    print(f"\nreal_dev ({reports['ours']['n']} photos never trained on)")
    print(f"{'model':<34} {'acc':>6}  " + "  ".join(f"{label[:6]:>6}" for label in labels) + f"    {groups}")
    for name, report in reports.items():
        print(row(name, report))
    print(f"\ntraining time, {args.epochs} epochs: naive Keras fit {naive_seconds:.1f} s; ours: features "
          f"{ours['features_s']:.1f} s ({recipe.views} views per image for each of {recipe.heads} heads) + "
          f"heads {ours['head_s']:.1f} s")
    print(f"ratio: head phase {results['naive']['ratio_head_only']}x; features + head "
          f"{results['naive']['ratio_features_and_head']}x")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
