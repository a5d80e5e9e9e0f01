"""``facesift train``: fine-tune SFace (cross-resolution, age gaps), train the face SR network or the analysis heads.

Importable without torch (the sub-app is registered in the main CLI); each command checks for the
``train`` extra and says how to install it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import typer

from facesift.cli.common import console, errors, exit_with_error, print_error, progress_bar
from facesift.errors import FacesiftError

app = typer.Typer(help="Train models on a CPU (needs the train extra of facesift: torch 2.13.0, CPU build).", no_args_is_help=True)

FACES = Path(os.environ.get("FACESIFT_FACES_DIR", "../shared/faces"))


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        print_error("training needs PyTorch: pip install 'facesift[train]' (torch==2.13.0, CPU build)")
        raise typer.Exit(2)


def _data(faces: Path, data: list[Path] | None, cache: Path, per_identity: int | None, eval_pairs: int):
    """Crops of the training identities (the split's, or ``data`` folders) and the held-out pairs."""
    from facesift.training.data import celeba300_split, identity_folders, prepare_crops
    from facesift.training.trainer import prepare_pairs

    split = celeba300_split(faces)
    folders = identity_folders(data) if data else list(split.train_folders)
    with progress_bar(len(folders)) as bar:
        task = bar.add_task("Aligning training faces", total=len(folders))
        crops = prepare_crops(folders, cache, per_identity=per_identity, progress=lambda n: bar.advance(task, n))
    held_out = prepare_pairs(list(split.test_pairs), eval_pairs, cache) if eval_pairs else None
    return crops, held_out


def _run(kind: str, config, faces: Path, data, cache: Path, per_identity, eval_pairs: int, resume: bool):
    from facesift.training.losses import LOSSES
    from facesift.training.superres import SuperResTrainer
    from facesift.training.trainer import EmbedderTrainer

    if config.loss not in LOSSES:
        print_error(f"unknown loss {config.loss!r}; choose one of {', '.join(LOSSES)}")
        raise typer.Exit(2)
    try:
        crops, held_out = _data(faces, data, cache, per_identity, eval_pairs)
        console.print(f"{len(crops.labels)} training crops of {len(crops.identities)} people; "
                      f"{0 if held_out is None else len(held_out.same)} held-out pairs (celeba300 folds 6-10)")
        trainer = (SuperResTrainer if kind == "superres" else EmbedderTrainer)(config, crops, held_out)
        with contextlib.closing(_EpochBars(config.epochs)) as bars:
            trainer.fit(resume=resume, progress=bars, log=errors.print)
    except FacesiftError as exc:
        exit_with_error(exc)
    return trainer.export()


class _EpochBars:
    """The trainer's progress drawn as one transient bar per epoch, its description carrying the last step's loss."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.bar, self.task = epochs, None, None

    def __call__(self, epoch: int, step: int, steps: int, loss: float | None) -> None:
        label = f"epoch {epoch}/{self.epochs}" + ("" if loss is None else f" loss {loss:.3f}")
        if step == 0:
            self.close()
            self.bar = progress_bar(steps)
            self.bar.start()
            self.task = self.bar.add_task(label, total=steps)
        else:
            self.bar.update(self.task, completed=step, description=label)
        if step >= steps:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _install(onnx_file: Path, name: str, command: str, *, compatible_with: str = "", below: float = 0.0, flip: bool = False) -> Path:
    from facesift.recognition import load_card
    from facesift.recognition.base import ModelCard
    from facesift.recognition.trained import install_trained

    base = load_card("sface")
    card = ModelCard(
        name=name,
        dims=base.dims,
        licence="Apache-2.0 (fine-tuned from SFace 2021dec, OpenCV Zoo); training photos: research use only",
        source=f"trained here: {command}",
        input_spec=base.input_spec,
        thresholds=dict(base.thresholds) if compatible_with else {},
        calibration="inherited from sface (same embedding space), not recalibrated" if compatible_with else "",
        compatible_with=compatible_with,
        eye_distance_below=below,
        flip=flip,
    )
    return install_trained(onnx_file, card)


LOSS = typer.Option("arcface", help="softmax, sphereface, cosface, arcface, adaface, quality, triplet or contrastive.")
EPOCHS = typer.Option(4, help="Passes over the training photos.")
OUTPUT = typer.Option(Path("runs/crossres"), help="Folder for the checkpoint, history and ONNX file.")
FACES_OPT = typer.Option(FACES, "--faces", help="The shared faces folder (celeba300 + pairs file, pins90, orl, yale, johns).")
DATA = typer.Option(None, "--data", help="Identity folders to train on instead of the split's (folders of <person>/<image>).")
CACHE = typer.Option(Path("runs/cache"), help="Where aligned crops and teacher embeddings are cached.")
PER_ID = typer.Option(None, help="At most this many images per person (smoke runs).")
STEPS = typer.Option(None, help="Steps per epoch (default: one pass over the crops).")
EVAL = typer.Option(600, help="Held-out pairs evaluated each epoch (0: none).")
RESUME = typer.Option(True, help="Continue from the output folder's checkpoint.")
THREADS = typer.Option(None, help="Torch threads (default: all cores).")
BATCH_PEOPLE = typer.Option(16, help="People per batch.")
BATCH_IMAGES = typer.Option(4, help="Images per person per batch.")


@app.command()
def crossres(
    loss: str = LOSS,
    epochs: int = EPOCHS,
    output: Path = OUTPUT,
    faces: Path = FACES_OPT,
    data: list[Path] | None = DATA,
    cache: Path = CACHE,
    distill: float = typer.Option(10.0, help="Weight of distillation from the frozen full-resolution SFace (0: plain fine-tuning)."),
    min_size: int = typer.Option(7, help="Smallest size (px across) training faces are shrunk to."),
    max_size: int = typer.Option(112, help="Largest size (px across) training faces are shrunk to (the pipeline "
                                 "routes only faces under about 28 px across to this model: --max-size 28 spends "
                                 "every shrunk sample there)."),
    low_res_probability: float = typer.Option(0.6, help="Share of each batch shrunk (the rest stays at full resolution)."),
    batch_people: int = BATCH_PEOPLE,
    batch_images: int = BATCH_IMAGES,
    lr: float = typer.Option(0.001, help="Learning rate of the network (the margin head uses 10x)."),
    per_identity: int | None = PER_ID,
    steps_per_epoch: int | None = STEPS,
    eval_pairs: int = EVAL,
    resume: bool = RESUME,
    threads: int | None = THREADS,
    init: Path | None = typer.Option(None, "--init", exists=True, dir_okay=False,
                                        help="Start from this ONNX file written by an earlier run (default: SFace)."),
    name: str = typer.Option("sface-lowres", help="Name the model is registered under."),
    below: float = typer.Option(9.0, help="The pipeline uses this model for faces whose eyes are closer than this (px)."),
    install: bool = typer.Option(True, help="Register the result as an embedder (in the facesift cache)."),
    flip: bool = typer.Option(False, help="Its card asks for flip test-time augmentation (embed the crop and its "
                              "mirror image): set it where that measured better on a validation split."),
) -> None:
    """Cross-resolution embedder: SFace fine-tuned on mixed-resolution batches, margin loss + distillation."""
    _require_torch()
    from facesift.training.trainer import TrainConfig

    if not 1 <= min_size <= max_size <= 112:
        print_error(f"need 1 <= --min-size <= --max-size <= 112 (got {min_size} and {max_size})")
        raise typer.Exit(2)
    config = TrainConfig(
        output=str(output), name=name, loss=loss, epochs=epochs, identities_per_batch=batch_people,
        images_per_identity=batch_images, lr=lr, head_lr=10 * lr, distill=distill, sizes=(min_size, max_size),
        low_res_probability=low_res_probability, steps_per_epoch=steps_per_epoch, threads=threads,
        init=str(init or ""),
    )
    onnx_file = _run("crossres", config, faces, data, cache, per_identity, eval_pairs, resume)
    _finish(onnx_file, name, install, compatible_with="sface" if distill > 0 else "", below=below if distill > 0 else 0.0, flip=flip)


@app.command()
def superres(
    epochs: int = EPOCHS,
    output: Path = typer.Option(Path("runs/facesr"), help="Folder for the checkpoint, history and ONNX file."),
    faces: Path = FACES_OPT,
    data: list[Path] | None = DATA,
    cache: Path = CACHE,
    identity_weight: float = typer.Option(1.0, help="Weight of the identity (embedding distance) loss."),
    perceptual_weight: float = typer.Option(0.1, help="Weight of the perceptual loss on SFace feature maps."),
    lr: float = typer.Option(0.01, help="Learning rate."),
    batch_people: int = BATCH_PEOPLE,
    batch_images: int = BATCH_IMAGES,
    per_identity: int | None = PER_ID,
    steps_per_epoch: int | None = STEPS,
    eval_pairs: int = EVAL,
    resume: bool = RESUME,
    threads: int | None = THREADS,
    install: bool = typer.Option(True, help="Register the result as the facesr restorer (in the facesift cache)."),
) -> None:
    """Face super-resolution (7 to 28 px -> 112 px) with pixel, perceptual and identity losses."""
    _require_torch()
    from facesift.training.trainer import TrainConfig

    config = TrainConfig(
        output=str(output), name="facesr", epochs=epochs, lr=lr, steps_per_epoch=steps_per_epoch, threads=threads,
        identities_per_batch=batch_people, images_per_identity=batch_images,
        loss_options={"identity": identity_weight, "perceptual": perceptual_weight}, distill=0.0,
    )
    onnx_file = _run("superres", config, faces, data, cache, per_identity, eval_pairs, resume)
    _finish(onnx_file, "facesr", install)


def _finish(onnx_file: Path, name: str, install: bool, **card) -> None:
    import sys

    console.print(f"wrote {onnx_file}")
    if install:
        command = "python -m facesift train " + " ".join(sys.argv[2:])
        console.print(f"registered as {name!r}: {_install(onnx_file, name, command, **card)}")


@app.command("age-gap")
def age_gap(
    data: Path = typer.Option(FACES / "lag-dev", help="Age-gap set laid out as <person>/y/ (young photos) + <person>/ (adult)."),
    people: str = typer.Option("fit", help="Which people to train on: fit (every second person in sorted order, as "
                               "`facesift evaluate age-gap --people fit` counts them) or all."),
    faces: Path = typer.Option(FACES, "--faces", help="The shared faces folder (its pins90 and utkface-dev keep SFace's embedding)."),
    cache: Path = CACHE,
    output: Path = typer.Option(Path("runs/age-gap/sface-agegap.onnx"), help="The ONNX file to write."),
    epochs: int = typer.Option(8, help="Epochs of --steps steps."),
    steps: int = typer.Option(50, help="Steps per epoch."),
    lr: float = typer.Option(1.5e-4, help="Learning rate of SFace's last two blocks."),
    distill: float = typer.Option(10.0, help="Weight of keeping SFace's embedding on adult and generic faces."),
    seed: int = typer.Option(0, help="Random seed."),
    name: str = typer.Option("sface-agegap", help="Name the model is registered under."),
    install: bool = typer.Option(True, help="Register the result as an embedder (in the facesift cache); calibrate "
                                 "its thresholds next with `facesift evaluate calibrate --model NAME`."),
) -> None:
    """SFace fine-tuned for age gaps: young photos pulled towards their adult selves, SFace kept elsewhere (docs/hard-cases.md)."""
    _require_torch()
    from facesift.evaluation.agegap import age_gap_people, split_people
    from facesift.training.agegap import AgeGapConfig, train_age_gap

    if people not in ("fit", "all"):
        print_error(f"--people is fit or all, not {people!r}")
        raise typer.Exit(2)
    try:
        chosen = age_gap_people(data)
        chosen = split_people(chosen)[0] if people == "fit" else chosen
        config = AgeGapConfig(epochs=epochs, steps_per_epoch=steps, lr=lr, distill=distill, seed=seed)
        onnx_file = train_age_gap(data, chosen, faces, cache, output, config, log=console.print)
    except FacesiftError as exc:
        exit_with_error(exc)
    _finish(onnx_file, name, install)


@app.command()
def analysis(
    action: list[str] = typer.Argument(..., help="Heads to train: age, gender, race, emotion, liveness (one command per model)."),
    faces: Path = typer.Option(FACES, "--faces", help="The shared faces folder (utkface-dev, fer2013-dev, nuaa-dev)."),
    cache: Path = CACHE,
    output: Path | None = typer.Option(None, help="Folder for the ONNX heads and heads.json (default: the package's own)."),
    epochs: int = typer.Option(120, help="Passes over the training faces (embedding heads)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Analysis heads (docs/analyze.md): trained on the training part of each set, calibrated out of fold."""
    _require_torch()
    from facesift.analysis.analyzer import ACTIONS
    from facesift.analysis.heads import MODELS_DIR
    from facesift.training.analysis import HeadConfig, train_heads

    unknown = sorted(set(action) - set(ACTIONS))
    if unknown:
        print_error(f"unknown head(s) {', '.join(unknown)}; choose from {', '.join(ACTIONS)}")
        raise typer.Exit(2)
    try:
        train_heads(faces, cache, tuple(action), output or MODELS_DIR, HeadConfig(epochs=epochs, seed=seed), log=console.print)
    except FacesiftError as exc:
        exit_with_error(exc)


LOWRES_DATA = (
    "celeba300 folds 1-5 (CelebA identities, 150 people) + pins90 (89 people, Pins face set) + orl + yale + johns, "
    "faces shrunk to low resolution; celeba300 folds 6-10 (the reported folds) never seen"
)


@app.command()
def ship(
    names: list[str] = typer.Argument(..., help="Models trained here to ship (e.g. sface-lowres sface-tiny)."),
    precision: str = typer.Option("fp16", help="How the shipped file stores its weights: fp16 (as shipped) or int8."),
    training_data: str = typer.Option(LOWRES_DATA, help="What the models were trained on (written into their cards)."),
    into: Path = typer.Option(Path(__file__).parent.parent / "recognition", help="The package folder to write into."),
) -> None:
    """Write models trained here into the package (weights/ + cards/), compressed, and print their sha256
    for ``SHIPPED`` in facesift/recognition/trained.py. Needs no torch."""
    from facesift.recognition.trained import pack_trained

    for name in names:
        try:
            path, digest = pack_trained(name, into, precision=precision, training_data=training_data)
        except (FileNotFoundError, ValueError) as exc:
            print_error(str(exc))
            raise typer.Exit(2)
        console.print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)\n  \"{name}\": \"{digest}\",", soft_wrap=True, markup=False)
