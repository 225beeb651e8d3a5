"""Distillation from the unpruned model onto the pose head's own outputs.

Ultralytics' DistillationModel matches the student's neck features (the head's inputs) to the
teacher's, through small projectors, weighted by where the teacher sees a person. That leaves
the head's keypoint branch to learn from the labels alone, and the labels give it little: the
OKS-shaped keypoint loss has almost no gradient for a keypoint predicted far from its place,
and a pruned keypoint branch starts far from it (a pruned yolo11n-pose keeps its boxes but
scores near zero on keypoints). The teacher's keypoints are a dense target: at every anchor,
where each keypoint is and how visible, in the same units as the student's own predictions.

PoseDistillationModel adds that term to Ultralytics' loss: the squared difference of the raw
keypoint offsets (grid units of their level, so a large person's keypoints weigh as much as a
small one's) and the binary cross-entropy of the visibility logits against the teacher's
probabilities, each anchor weighted by the teacher's person score, as the feature term is.
"""
import torch
import torch.nn.functional as F
from ultralytics.nn.distill_model import DistillationModel


def head_branches(output) -> list:
    """The prediction dicts (boxes, scores, kpts) of a head's output, train or eval mode; an
    end-to-end head (Pose26) has two, one per assignment branch."""
    if isinstance(output, tuple):
        output = output[1]
    if "kpts" in output:
        return [output]
    return [output[k] for k in sorted(output) if isinstance(output[k], dict) and "kpts" in output[k]]


def keypoint_distillation_loss(student: dict, teacher: dict, ndim: int) -> torch.Tensor:
    """Teacher-score-weighted mean over anchors of the squared keypoint offset difference plus,
    where keypoints carry visibility (ndim 3), its binary cross-entropy."""
    weight = teacher["scores"].detach().sigmoid().amax(1)  # (batch, anchors)
    bs, _, anchors = student["kpts"].shape
    s = student["kpts"].view(bs, -1, ndim, anchors)
    t = teacher["kpts"].detach().view(bs, -1, ndim, anchors)
    per_anchor = (s[:, :, :2] - t[:, :, :2]).pow(2).sum(2).mean(1)
    if ndim == 3:
        per_anchor = per_anchor + F.binary_cross_entropy_with_logits(
            s[:, :, 2], t[:, :, 2].sigmoid(), reduction="none").mean(1)
    return (per_anchor * weight).sum() / weight.sum().clamp_min(1e-9)


class PoseDistillationModel(DistillationModel):
    """Ultralytics' feature distillation (weighted by `dis`) plus the teacher's keypoints
    (weighted by `keypoint_weight`); `kpt_dis_loss` among the loss items."""

    def __init__(self, teacher_model, student_model, keypoint_weight: float):
        super().__init__(teacher_model=teacher_model, student_model=student_model)
        self.keypoint_weight = keypoint_weight

    def loss(self, batch, preds=None):
        total, items = super().loss(batch, preds)
        kpt = torch.zeros(1, device=batch["img"].device)
        if self.training:  # the parent's forward passes left both heads' outputs in the hooks
            head = len(self.feats_idx) - 1
            ndim = self.student_model.model[-1].kpt_shape[1]
            pairs = zip(head_branches(self._student_feats[head]), head_branches(self._teacher_feats[head]))
            kpt = kpt + sum(keypoint_distillation_loss(s, t, ndim) for s, t in pairs) * self.keypoint_weight
        items["kpt_dis_loss"] = kpt.detach()
        return torch.cat([total, kpt * batch["img"].shape[0]]), items
