"""Command line: ``python -m train fit | evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from augment.cli import SEED, Stage, exit_interrupted, require_writable
from augment.faces import DETECTORS
from augment.images import FolderBusy
from train.fit import Recipe, run_folder

# DataError, ModelError, unwritable paths, another run writing the same model: one line, exit 1
EXPECTED = (ValueError, OSError, FolderBusy)


def _fail(error: Exception) -> None:
    raise click.ClickException(str(error))


def _accuracy_line(name: str, metrics: dict) -> str:
    recalls = ", ".join(f"{label} {values['recall']:.1%}" for label, values in metrics["per_class"].items()
                        if values["recall"] is not None)
    counts = {values["n"] for values in metrics["per_class"].values() if values["n"]}
    balanced = f"balanced {metrics['balanced_accuracy']:.1%}; " if len(counts) > 1 else ""
    return f"{name}: accuracy {metrics['accuracy']:.1%} on {metrics['n']} ({balanced}recall: {recalls})"


@click.group(cls=Stage)
def main() -> None:
    """Train a MobileNetV2 mask classifier and evaluate it on labelled photos."""


@main.command()
@click.option("--data", type=click.Path(path_type=Path), multiple=True, default=["dataset_generated"],
              show_default=True,
              help="Folder with one sub-folder per label (a generated dataset, or any labelled photos); give it "
                   "again to train on several together (each then needs one label, all together two).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              default="models/mask_classifier.keras", show_default=True,
              help="Model file to write; its report goes to a folder of the same name beside it.")
@click.option("--weights", default=Recipe.weights, show_default=True,
              help="MobileNetV2 start: imagenet (Keras downloads it), a .weights.h5 file, or none (random: for "
                   "trying the pipeline; such a model guesses).")
@click.option("--alpha", type=float, default=Recipe.alpha, show_default=True,
              help="MobileNetV2 width multiplier; must match the weights.")
@click.option("--size", type=click.IntRange(32, 512), default=Recipe.size, show_default=True, help="Input side in pixels.")
@click.option("--epochs", type=click.IntRange(1), default=Recipe.epochs, show_default=True,
              help="Epochs of the head on cached features.")
@click.option("--views", type=click.IntRange(1), default=Recipe.views, show_default=True,
              help="Random degraded views per training image and head, each through the frozen base once.")
@click.option("--heads", type=click.IntRange(1), default=Recipe.heads, show_default=True,
              help="Heads on the base, each trained on its own views; the model averages them.")
@click.option("--fine-tune-epochs", type=click.IntRange(0), default=Recipe.fine_tune_epochs, show_default=True,
              help="Epochs of end-to-end training of the top blocks afterwards (slow).")
@click.option("--batch-size", type=click.IntRange(1), default=Recipe.batch_size, show_default=True)
@click.option("--seed", type=SEED, default=Recipe.seed, show_default=True)
@click.option("--tflite", is_flag=True, help="Also export float and int8 TFLite models, checked against the Keras one.")
def fit(data: tuple[Path, ...], model_path: Path, weights: str, alpha: float, size: int, epochs: int, views: int,
        heads: int, fine_tune_epochs: int, batch_size: int, seed: int, tflite: bool) -> None:
    """Train on DATA (one or more folders); write the model, metrics, history, plots and worst errors.

    Ctrl-C keeps the work done so far; the same command then goes on from it.
    """
    from train.fit import fit as train

    recipe = Recipe(weights=weights, alpha=alpha, size=size, epochs=epochs, views=views, heads=heads,
                    fine_tune_epochs=fine_tune_epochs, batch_size=batch_size, seed=seed)
    require_writable(model_path)
    try:
        summary = train(list(data), model_path, recipe, tflite=tflite)
    except EXPECTED as error:
        _fail(error)
    except KeyboardInterrupt:
        exit_interrupted(f"the work done so far, in {run_folder(model_path) / 'unfinished'},")
    named = [folder for folder, source in summary["split_from"].items() if source == "file names"]
    if named:
        click.echo(f"note: {', '.join(named)} {'has' if len(named) == 1 else 'have'} no generator manifest; split by "
                   f"file name, paired names kept together, and copies of one picture (mirrored, resized, "
                   f"re-saved) with their pairs: {summary['copies']} images")
    for problem in summary["unreadable"]:
        click.echo(f"warning: skipped {problem['path']}: {problem['reason']}", err=True)
    for name, metrics in summary["metrics"].items():
        click.echo(_accuracy_line(name, metrics))
    for name, check in summary.get("tflite", {}).items():
        click.echo(f"tflite {name}: {check['path']} agrees with Keras on {check['agreement']:.1%} of {check['n']} "
                   f"(accuracy {check['accuracy']:.1%})")
    timings = summary["timings"]
    click.echo(f"wrote {model_path} and {run_folder(model_path)}/ in {timings['total_s']:.0f} s "
               f"(features {timings['features_s']:.0f} s, heads {timings['head_s']:.1f} s)")


@main.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              default="models/mask_classifier.keras", show_default=True)
@click.option("--data", type=click.Path(path_type=Path), required=True, multiple=True,
              help="Folder with one sub-folder per label, e.g. with_mask/ and without_mask/ (one will do); "
                   "give it again to score several folders together.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON report to write (a confusion-matrix picture goes beside it).")
@click.option("--errors", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Contact sheet of the most confident mistakes.")
@click.option("--detect", is_flag=True, help="Find each image's largest face first and label it as `detect` does "
              "(whole image if no face is found).")
@click.option("--detector", type=click.Choice(DETECTORS), default="auto", show_default=True)
def evaluate(model_path: Path, data: tuple[Path, ...], report: Path | None, errors: Path | None, detect: bool,
             detector: str) -> None:
    """Score a model on labelled photos: accuracy, per-class precision and recall, confusion matrix."""
    from train.evaluate import evaluate as score, write_report

    require_writable(report)
    require_writable(errors)
    try:
        result = score(model_path, list(data), detect=detect, detector=detector, errors=errors)
        if report is not None:
            write_report(result, report)
    except EXPECTED as error:
        _fail(error)
    for problem in result["skipped"]:
        click.echo(f"warning: skipped {problem['path']}: {problem['reason']}", err=True)
    click.echo(_accuracy_line(", ".join(map(str, data)), result))
    if detect:
        click.echo(f"faces found in {result['faces_found']}, whole image used for {result['whole_image']}")
    elif result["manifest_boxes"]:
        click.echo(f"{result['manifest_boxes']} faces framed by their generated dataset's boxes (manifest.jsonl)")
    if report is None:
        click.echo(json.dumps({key: result[key] for key in ("n", "accuracy", "confusion")}))
