"""Fine-tuning a pruned YOLO pose model with Ultralytics' own trainer, keeping what pruning removed.

The trainer trains the pruned module itself (PrunedPoseTrainer). Weights zeroed by unstructured
pruning are re-zeroed after every optimizer step, in the model and in its EMA (the EMA is what
gets saved), so the prune ratio after fine-tuning equals the ratio before it exactly. Under
distillation Ultralytics wraps the student with the teacher; the student alone is saved.
"""
import shutil
from copy import deepcopy
from pathlib import Path

from ultralytics.cfg import DEFAULT_CFG
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.nn.distill_model import DistillationModel
from ultralytics.utils.torch_utils import unwrap_model

from posecompress.common.checks import InputError, existing_file
from posecompress.common.outputs import atomic_path, scratch_dir
from posecompress.yolo.checkpoint import read_checkpoint, save_checkpoint
from posecompress.yolo.distillation import PoseDistillationModel
from posecompress.yolo.models import count_params, gflops, load_pose_model, validate
from posecompress.yolo.pruning import apply_masks, sparsity

# What `freeze` does to the BatchNorm layers of the frozen modules. Ultralytics 8.4 puts them in
# eval mode (BaseTrainer._model_train, a 2024 change; cf. PR #8753). Before it, `freeze` stopped
# gradients only and every BatchNorm re-estimated its running statistics on the train batches.
# At the study's lr0 1e-7 the weights barely move, so its recovery can only come from there:
# after L1 pruning the statistics are stale, and re-estimating them recovers accuracy.
FROZEN_BN = {"keep": "running statistics of frozen layers stay as loaded (Ultralytics today)",
             "update": "frozen layers re-estimate their running statistics (Ultralytics before 2024)"}



class PrunedPoseTrainer(PoseTrainer):
    """Ultralytics' PoseTrainer training the checkpoint's own module (`model=<checkpoint.pt>`)
    instead of a fresh one built from its YAML: a pruned model cannot be rebuilt from it.
    `frozen_bn` (FROZEN_BN) says what `freeze` does to the frozen modules' BatchNorm layers;
    `keypoint_distill` > 0 adds the teacher's keypoints to the distillation (`distill_model`),
    with that weight (posecompress.yolo.distillation)."""

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None, frozen_bn: str = "keep",
                 keypoint_distill: float = 0.0):
        if frozen_bn not in FROZEN_BN:
            raise ValueError(f"frozen_bn: {frozen_bn!r} is not one of {', '.join(FROZEN_BN)}")
        self.frozen_bn = frozen_bn
        self.keypoint_distill = keypoint_distill
        super().__init__(cfg, overrides, _callbacks)
        if keypoint_distill and self.args.distill_model is None:
            raise ValueError("keypoint_distill needs the teacher: distill_model")

    def get_model(self, cfg=None, weights=None, verbose=True):
        if weights is None:
            raise ValueError("PrunedPoseTrainer needs model=<checkpoint.pt> to train")
        return self.set_model_names_for_load(weights)

    def set_model_attributes(self):
        super().set_model_attributes()
        # The trainer wraps the student in its DistillationModel further on unless the model is
        # one already; this is the last step before that where self.model is the student, with
        # its attributes set, so the wrapper with the keypoint term takes its place here.
        if self.keypoint_distill and not isinstance(self.model, DistillationModel):
            self.model = PoseDistillationModel(self.args.distill_model, self.model, self.keypoint_distill)

    def _model_train(self):
        # The trainer's one place that puts frozen BatchNorm layers in eval mode, at every
        # epoch start and after callbacks have run, so no hook can undo it: overridden here.
        if self.frozen_bn == "update":
            self.model.train()
        else:
            super()._model_train()


def print_progress(trainer) -> None:
    """One line per epoch, flushed, whatever the terminal: a long fine-tune shows it is alive
    (Ultralytics' own bars are off in the pipeline: YOLO_VERBOSE, see posecompress/__init__.py)."""
    import time

    done, total = trainer.epoch + 1, trainer.epochs
    if done > total:  # the final validation of best.pt runs these callbacks once more
        return
    per_epoch = (time.time() - trainer.train_time_start) / done
    loss = sum(float(v) for v in (trainer.tloss or {}).values())  # the epoch's mean loss items
    fitness = trainer.metrics.get("metrics/mAP50-95(P)", float("nan"))
    print(f"  epoch {done}/{total}: train loss {loss:.3f}, pose mAP50-95 {fitness:.4f}, "
          f"{per_epoch:.0f} s an epoch, about {per_epoch * (total - done) / 60:.0f} min left", flush=True)


def _student(module):
    """The model being trained: under distillation Ultralytics wraps it with the teacher
    (DistillationModel), whose EMA keeps the student and the feature projectors."""
    return getattr(module, "student_model", module)


def finetune(model_path, dataset_yaml, train_args: dict, masked_layers, run_dir, teacher=None):
    """Train the checkpoint (distilling from `teacher` when train_args["distill"]); returns the
    best EMA module in float32, the run's results.csv and the trainer's arguments (saved in the
    checkpoint as Ultralytics does)."""
    train_args = dict(train_args)
    if train_args.pop("distill"):
        train_args["distill_model"] = str(teacher)
    frozen_bn = train_args.pop("frozen_bn")
    keypoint_distill = train_args.pop("distill_keypoints", 0.0)
    trainer = PrunedPoseTrainer(overrides={**train_args, "model": str(model_path), "data": str(dataset_yaml),
                                           "project": str(run_dir), "name": "finetune", "exist_ok": True},
                                frozen_bn=frozen_bn, keypoint_distill=keypoint_distill)
    kept = {}

    def take_masks(tr):
        module = _student(unwrap_model(tr.model))
        kept["masks"] = {n: m.weight.detach() != 0 for n, m in module.named_modules() if n in masked_layers}

    def reapply_masks(tr):  # after the optimizer step and the EMA update of this batch
        apply_masks(_student(unwrap_model(tr.model)), masked_layers, kept["masks"])
        apply_masks(_student(tr.ema.ema), masked_layers, kept["masks"])

    def keep_best(tr):  # Ultralytics' best.pt is half precision; keep the float32 EMA it came from
        if tr.fitness is not None and tr.best_fitness == tr.fitness:
            kept["best"] = deepcopy(_student(tr.ema.ema))

    trainer.add_callback("on_train_start", take_masks)
    trainer.add_callback("on_fit_epoch_end", print_progress)
    trainer.add_callback("on_train_batch_end", reapply_masks)
    trainer.add_callback("on_model_save", keep_best)
    trainer.train()
    best = kept["best"] if "best" in kept else deepcopy(_student(trainer.ema.ema))
    best.criterion = None  # training-only state
    return best.float().cpu().eval(), Path(trainer.save_dir) / "results.csv", vars(trainer.args)


def finetune_and_measure(model_path, dataset_yaml, out, plots, train_args: dict, teacher=None) -> dict:
    """Fine-tune, save the model to `out` and the curves to `plots`, measure the saved file."""
    if existing_file(model_path, "model").suffix != ".pt":
        raise InputError(f"model {model_path}: expected a PyTorch .pt checkpoint")
    pruned = load_pose_model(model_path)
    if train_args["distill"]:
        if teacher is None:
            raise InputError("distill: true needs the unpruned model to learn from: --teacher <baseline .pt>")
        if existing_file(teacher, "teacher").suffix != ".pt":
            raise InputError(f"teacher {teacher}: expected a PyTorch .pt checkpoint")
        load_pose_model(teacher)  # a pose model, refused in one line otherwise
    record = read_checkpoint(model_path).get("pruning") or {}
    layers = record.get("layers", [])
    before = sparsity(pruned.model, layers) if layers else {}
    imgsz, batch = train_args["imgsz"], train_args["batch"]
    with scratch_dir("train") as run_dir, atomic_path(out) as tmp:
        module, results, args = finetune(model_path, dataset_yaml, train_args, layers, run_dir, teacher)
        save_checkpoint(module, tmp, {"train_args": args}, record)
        tuned = load_pose_model(tmp)
        counts = sparsity(tuned.model, layers) if layers else {}
        if before:
            counts["prune_ratio_before"] = before["prune_ratio"]
        metrics = {"device": train_args["device"], **validate(tuned, dataset_yaml, imgsz, batch), **counts,
                   "params": count_params(tuned), "gflops": gflops(tuned, imgsz)}
        if plots:
            with atomic_path(plots) as tmp_plots:
                shutil.copy(results, tmp_plots)
    return metrics
