"""Style mix benchmark: do the built-in styles, as they are, beat another set of styles on real photos?

    python bench/bench_mix.py [--shared ../shared] [--out build/bench_mix] [--seeds 0,1,2,3,4,5]
                              [--against STYLE_DIR]

For each seed it generates a dataset from ``data/raw`` twice, with the built-in styles as they
are and with the other styles: by default the same PNGs drawn equally often (sidecar weights
removed), or the folder ``--against`` names (e.g. the styles of an earlier commit, rendered with
``python -m augment draw-styles --out DIR`` there). It trains our recipe on each (MobileNetV2
0.35 from ``weights/``, the seed also seeding training) and evaluates both on ``data/real_dev``.
It prints accuracy and per-class recall per seed, the mean of each set and the per-seed
difference; OUT/results.json keeps them. About two minutes a seed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from augment.dataset import Settings  # noqa: E402
from augment.generate import generate  # noqa: E402
from bench_train import WEIGHTS  # noqa: E402  (the same pretrained weights as the trainer benchmark)
from train.evaluate import evaluate  # noqa: E402
from train.fit import Recipe, fit  # noqa: E402


def unweighted_copy(styles: Path, folder: Path) -> Path:
    """The styles in ``styles`` copied to ``folder`` with every sidecar's weight removed."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for png in sorted(styles.glob("*.png")):
        shutil.copy(png, folder)
        sidecar = png.with_suffix(".json")
        if sidecar.is_file():
            fields = {key: value for key, value in json.loads(sidecar.read_text()).items() if key != "weight"}
            (folder / sidecar.name).write_text(json.dumps(fields, indent=2) + "\n")
    return folder


def real_dev_scores(shared: Path, styles: Path, seed: int, out: Path) -> dict:
    """Generate with ``styles`` and ``seed``, train, and score on real_dev: accuracy, log loss and recall per class."""
    shutil.rmtree(out, ignore_errors=True)
    generate(shared / "data/raw", out / "data", [styles], Settings(seed=seed), progress=False, warn=lambda _: None)
    recipe = Recipe(weights=str(shared / WEIGHTS), alpha=0.35, seed=seed)
    fit(out / "data", out / "model.keras", recipe, progress=False)
    report = evaluate(out / "model.keras", shared / "data/real_dev", progress=False)
    return {"accuracy": report["accuracy"], "log_loss": report["log_loss"],
            **{label: values["recall"] for label, values in report["per_class"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--out", type=Path, default=PROJECT / "build/bench_mix")
    parser.add_argument("--seeds", default="0,1,2,3,4,5")
    parser.add_argument("--against", type=Path, default=None,
                        help="style folder to compare with (default: the built-in styles unweighted)")
    args = parser.parse_args()
    shared, out = args.shared.resolve(), args.out
    seeds = [int(seed) for seed in args.seeds.split(",")]
    other = ("against", args.against.resolve()) if args.against else (
        "uniform", unweighted_copy(PROJECT / "mask_images", out / "uniform_styles"))
    style_sets = {"built-in": PROJECT / "mask_images", other[0]: other[1]}

    results: dict = {name: {} for name in style_sets}
    print(f"{'seed':>4}  {'styles':<9} {'acc':>6} {'loss':>6} {'masked':>7} {'unmasked':>8}", flush=True)
    for seed in seeds:
        for name, styles in style_sets.items():
            scores = real_dev_scores(shared, styles, seed, out / f"{name}_{seed}")
            results[name][seed] = scores
            print(f"{seed:>4}  {name:<9} {scores['accuracy']:6.1%} {scores['log_loss']:6.3f} "
                  f"{scores['with_mask']:7.1%} {scores['without_mask']:8.1%}", flush=True)

    print(f"\nreal_dev, mean over {len(seeds)} seeds")
    for name in style_sets:
        means = {key: statistics.mean(s[key] for s in results[name].values()) for key in results[name][seeds[0]]}
        print(f"{name:<9} accuracy {means['accuracy']:.2%}  log loss {means['log_loss']:.4f}  "
              f"masked {means['with_mask']:.2%}  unmasked {means['without_mask']:.2%}")
    gains = [results["built-in"][s]["accuracy"] - results[other[0]][s]["accuracy"] for s in seeds]
    print(f"built-in - {other[0]} accuracy per seed: " + ", ".join(f"{100 * g:+.2f}" for g in gains)
          + f" points (better on {sum(g > 0 for g in gains)} of {len(seeds)})")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
