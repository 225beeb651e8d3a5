"""The keypoint term of the distillation loss, on head outputs built by hand."""
import torch

from posecompress.yolo.distillation import head_branches, keypoint_distillation_loss


def _outputs(kpts, scores):
    return {"boxes": torch.zeros(kpts.shape[0], 64, kpts.shape[2]), "scores": scores, "kpts": kpts}


def test_keypoint_term_is_zero_on_the_teachers_offsets_and_counts_only_where_the_teacher_sees_a_person():
    torch.manual_seed(0)
    teacher_kpts = torch.randn(2, 17 * 3, 10)
    person = torch.full((2, 1, 10), -20.0)  # no anchor holds a person ...
    person[:, :, 3] = 20.0                   # ... but anchor 3
    teacher = _outputs(teacher_kpts, person)

    student = teacher_kpts.clone()
    student[:, 2::3] = 20 * teacher_kpts[:, 2::3].sign()  # visibility surer than the teacher's
    student[:, 0::3] += 0.5
    at_teacher = keypoint_distillation_loss(_outputs(teacher_kpts.clone(), person), teacher, 3)
    off = keypoint_distillation_loss(_outputs(student, person), teacher, 3)
    assert at_teacher < off  # the offsets, and visibility's cross-entropy least at the teacher's logits
    xy = torch.randn(1, 17 * 2, 4)
    shifted = xy.clone()
    shifted[:, 0::2] += 0.5  # every x half a grid unit off: 0.25 a keypoint, whatever the weights
    everywhere = torch.zeros(1, 1, 4)
    assert torch.isclose(keypoint_distillation_loss(_outputs(shifted, everywhere), _outputs(xy, everywhere), 2),
                         torch.tensor(0.25), atol=1e-6)

    moved_elsewhere = teacher_kpts.clone()
    moved_elsewhere[:, :, 5] += 3.0  # an anchor the teacher calls background: ignored
    assert torch.isclose(keypoint_distillation_loss(_outputs(moved_elsewhere, person), teacher, 3), at_teacher,
                         atol=1e-6)
    moved_on_person = teacher_kpts.clone()
    moved_on_person[:, 0::3, 3] += 3.0
    assert keypoint_distillation_loss(_outputs(moved_on_person, person), teacher, 3) > at_teacher + 4


def test_keypoint_term_gives_the_student_a_gradient_and_the_teacher_none():
    torch.manual_seed(0)
    teacher = _outputs(torch.randn(1, 34, 6, requires_grad=True), torch.zeros(1, 1, 6))
    student = _outputs(torch.randn(1, 34, 6, requires_grad=True), torch.zeros(1, 1, 6))
    keypoint_distillation_loss(student, teacher, 2).backward()
    assert student["kpts"].grad.abs().sum() > 0 and teacher["kpts"].grad is None


def test_head_branches_reads_train_eval_and_end_to_end_outputs():
    one = _outputs(torch.zeros(1, 51, 4), torch.zeros(1, 1, 4))
    assert head_branches(one) == [one]
    assert head_branches((torch.zeros(1), one)) == [one]
    other = _outputs(torch.ones(1, 51, 4), torch.zeros(1, 1, 4))
    assert head_branches({"one2one": other, "one2many": one}) == [one, other]
