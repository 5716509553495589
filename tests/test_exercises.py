"""Every lesson's exercises, from one table: the committed solution passes its checker, the student
stub does not, and wrong answers a learner might write fail (with the hint they should get).

Add a lesson by adding a row to ``LESSONS`` and its wrong answers to ``WRONG_BODIES`` /
``WRONG_FUNCTIONS``; the tests below are the same for all lessons. An exercise is a function
checked by ``check_<name>(<name>)`` (or by the checker ``checker_names`` gives), or, in a quiz
lesson (10), a variable ``answer_qNN`` checked by ``check_answer("qNN", answer_qNN)``. What only
one lesson has (lesson 10's question texts and computed answers) is tested at the end.
"""
from __future__ import annotations

import functools
import importlib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import pytest

from gradcam_helpers.course.exercises import STUB, define, has_solution, replace_solutions, solution_cells
from gradcam_helpers.course.exercises.lesson10 import (
    LETTERS,
    QUESTIONS,
    Question,
    answer_shares,
    check_answer,
    longest_right_share,
    right_is_longest,
    run_fill_in,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass(frozen=True)
class Lesson:
    notebook: str                       # file name in notebooks/
    exercises: tuple[str, ...]          # function names; the checker is check_<name>
    needs: tuple[str, ...] = ()         # modules the solutions import (skipped when missing)
    checker_names: dict[str, str] = field(default_factory=dict)  # exercise -> checker, if not check_<name>
    quiz: bool = False                  # exercises are answer_qNN variables, checked by check_answer

    @property
    def checkers(self):
        number = self.notebook[:2]
        return importlib.import_module(f"gradcam_helpers.course.exercises.lesson{number}")

    def checker(self, name: str):
        """The callable that checks the learner's ``name``."""
        if self.quiz:
            return functools.partial(self.checkers.check_answer, name.removeprefix("answer_"))
        return getattr(self.checkers, self.checker_names.get(name, f"check_{name}"))

    def check_call(self, name: str) -> str:
        """The call the notebook's check cell makes."""
        if self.quiz:
            return f'check_answer("{name.removeprefix("answer_")}", {name})'
        return f"{self.checker_names.get(name, f'check_{name}')}({name})"


LESSONS = {
    "01": Lesson("01_mnist_data.ipynb", ("normalize", "class_counts", "ink_box")),
    "02": Lesson("02_functional_cnn.ipynb", ("conv_output_size", "conv_params", "confusion_matrix")),
    "03": Lesson("03_cam.ipynb", ("cam_by_hand", "normalize_map", "bgr_to_rgb")),
    "04": Lesson("04_gradcam.ipynb", ("gradcam_maps", "normalize_per_image", "points_inside")),
    "05": Lesson("05_sequential_pitfall.ipynb", ("make_grad_model", "find_layer_path"),
                 needs=("keras",)),
    "06": Lesson("06_chest_xray_resnet.ipynb", ("gradcam_from_arrays", "roc_auc", "pointing_hit")),
    "07": Lesson("07_shortcut_learning.ipynb", ("corner_share", "accuracy_by_tag")),
    "08": Lesson("08_pretrained_cat.ipynb", ("top_k", "integrated_gradients", "left_share")),
    "09": Lesson("09_compare_methods.ipynb", ("deletion_images", "average_drop", "rank_corr", "gini"),
                 needs=("scipy",)),
    "10": Lesson("10_exam_review.ipynb", tuple(f"answer_{qid}" for qid in QUESTIONS), quiz=True),
    "11": Lesson("11_dataset_audit.ipynb", ("flag_rate_by_folder", "accuracy_with_and_without"),
                 needs=("pandas",),
                 checker_names={"accuracy_with_and_without": "check_accuracy_without_flag"}),
    "12": Lesson("12_keras_backends.ipynb", ("gradcam_weights",), needs=("jax",)),
    "13": Lesson("13_vision_transformer.ipynb", ("tokens_to_grid", "rollout_step")),
    "14": Lesson("14_global_explanations.ipynb", ("grouped_permutation_importance", "ice_and_pd"),
                 needs=("sklearn",)),
    "15": Lesson("15_segmentation_detection.ipynb", ("other_class_map", "box_iou", "energy_outside")),
}

# (lesson, exercise, body that replaces the solution, a phrase the checker's message must contain
# or None)
WRONG_BODIES = [
    ("01", "normalize", "return np.expand_dims(raw / 256.0, -1)", "255"),
    ("01", "normalize", "return raw / 255.0", "チャンネル軸"),
    ("01", "normalize", "return np.expand_dims(raw // 255, -1)", "float"),
    ("01", "normalize", "return np.expand_dims(raw / raw.max(), -1)", None),
    ("01", "class_counts", "return np.unique(labels, return_counts=True)[1]", "長さ 10"),
    ("01", "class_counts", "return np.bincount(labels)", "長さ 10"),
    ("01", "class_counts", "return np.full(10, len(labels) // 10)", "期待値"),
    ("01", "ink_box", "ys, xs = np.nonzero(image > threshold)\n"
                      "return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())", "終端"),
    ("01", "ink_box", "ys, xs = np.nonzero(image > threshold)\n"
                      "return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1",
     "逆"),
    ("01", "ink_box", "ys, xs = np.nonzero(image > 0)\n"
                      "return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1",
     "threshold"),
    ("01", "ink_box", "return 0, 0, image.shape[1], image.shape[0]", None),
    ("02", "conv_output_size", "return size - kernel + 1", None),
    ("02", "conv_params", "return kernel * kernel * in_channels * filters", None),
    ("02", "confusion_matrix", "cm = np.zeros((num_classes, num_classes), dtype=int)\n"
                               "np.add.at(cm, (y_pred, y_true), 1)\nreturn cm", "行と列が逆"),
    ("03", "cam_by_hand", "return features @ weights[:, cls]", None),          # no ReLU
    ("03", "cam_by_hand", "return np.maximum(features @ weights[:, 0], 0)", "クラス 1 の CAM が違います"),
    ("03", "cam_by_hand", "return np.maximum(features.sum(-1), 0)", "CAM が違います"),
    ("03", "normalize_map", "return m / m.max()", None),                        # 0 / 0
    ("03", "bgr_to_rgb", "return image", None),
    # keras.io's line: one set of weights for the whole batch
    ("04", "gradcam_maps", "return np.maximum(np.einsum('nhwk,k->nhw', activations, "
                           "gradients.mean(axis=(0, 1, 2))), 0)", "バッチ軸"),
    ("04", "gradcam_maps", "return np.einsum('nhwk,nk->nhw', activations, gradients.mean(axis=(1, 2)))",
     "ReLU"),
    ("04", "gradcam_maps", "return np.maximum(np.einsum('nhwk,nk->nhw', activations, "
                           "gradients.sum(axis=(1, 2))), 0)", "平均"),
    ("04", "gradcam_maps", "return np.maximum((activations * gradients).sum(axis=-1), 0)", None),
    ("04", "gradcam_maps", "return np.maximum(np.einsum('nhwk,nk->nhw', activations, "
                           "gradients.mean(axis=(1, 2))), 0).mean(axis=0)", "形"),
    ("04", "normalize_per_image", "return maps / maps.max(axis=(1, 2), keepdims=True)", "NaN"),
    ("04", "normalize_per_image", "return maps / maps.max()", "画像ごと"),
    ("04", "normalize_per_image", "lo = maps.min(axis=(1, 2), keepdims=True)\n"
                                  "hi = maps.max(axis=(1, 2), keepdims=True)\n"
                                  "return np.divide(maps - lo, hi - lo, out=np.zeros_like(maps), "
                                  "where=hi > lo)", "min-max"),
    ("04", "points_inside", "y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)\n"
                            "x0, y0, x1, y1 = box\n"
                            "return bool(cam_map.max() > 0 and x0 <= x <= x1 and y0 <= y <= y1)",
     "含まない"),
    ("04", "points_inside", "x, y = np.unravel_index(np.argmax(cam_map), cam_map.shape)\n"
                            "x0, y0, x1, y1 = box\n"
                            "return bool(cam_map.max() > 0 and x0 <= x < x1 and y0 <= y < y1)", "逆"),
    ("04", "points_inside", "y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)\n"
                            "x0, y0, x1, y1 = box\n"
                            "return bool(x0 <= x < x1 and y0 <= y < y1)", "全部 0"),
    # the source article's line: model.output is undefined on a Sequential model
    ("05", "make_grad_model",
     "return keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])",
     "outputs[0]"),
    ("05", "make_grad_model",
     "return keras.Model(model.inputs, [model.layers[0].output, model.outputs[0]])", "一致しません"),
    ("05", "make_grad_model", "return keras.Model(model.inputs, model.outputs[0])", "2 つ"),
    ("05", "find_layer_path",                                        # one level deep only
     "for layer in model.layers:\n"
     "    if layer.name == name:\n"
     "        return layer.name\n"
     "    for sub in getattr(layer, 'layers', []):\n"
     "        if sub.name == name:\n"
     "            return f'{layer.name}/{sub.name}'\n"
     "return None", "再帰"),
    ("05", "find_layer_path",                                        # finds it, forgets the path
     "for layer in getattr(model, 'layers', []):\n"
     "    if layer.name == name or find_layer_path(layer, name) is not None:\n"
     "        return name\n"
     "return None", "経路"),
    ("05", "find_layer_path", "return name", "経路"),
    ("06", "gradcam_from_arrays", "return np.maximum((activations * gradients).sum(axis=0), 0)",
     "空間方向"),
    ("06", "gradcam_from_arrays",
     "return np.maximum(np.tensordot(gradients.sum(axis=(1, 2)), activations, axes=(0, 0)), 0)",
     "合計"),
    ("06", "gradcam_from_arrays",
     "return np.tensordot(gradients.mean(axis=(1, 2)), activations, axes=(0, 0))", "ReLU"),
    # channels-last thinking (Keras): weights over the wrong axes, result (C, h)
    ("06", "gradcam_from_arrays", "return np.maximum(activations @ gradients.mean(axis=(0, 1)), 0)",
     "(h, w)"),
    ("06", "roc_auc", "return float(((np.asarray(scores) > 0.5) == np.asarray(labels)).mean())",
     "正解率"),
    ("06", "roc_auc", "s = np.asarray(scores); l = np.asarray(labels)\n"
                      "return float((s[l == 0][:, None] > s[l == 1][None, :]).mean())", "取り違え"),
    ("06", "roc_auc", "s = np.asarray(scores); l = np.asarray(labels)\n"
                      "return float((s[l == 1][:, None] > s[l == 0][None, :]).mean())", "同点"),
    ("06", "pointing_hit", "r, c = np.unravel_index(np.argmax(cam), cam.shape)\n"
                           "return bool(mask[c % mask.shape[0], r])", None),       # (x, y) mixed up
    ("06", "pointing_hit", "r, c = np.unravel_index(np.argmax(cam), cam.shape)\n"
                           "return bool(mask[r, c])", "全部 0"),
    ("07", "corner_share", "h, w = cam.shape\nc = round(corner_size * h)\n"           # one corner
                           "return float(cam[:c, :c].sum() / cam.sum())", None),
    # squares of round(size * H) on both axes: wrong for a non-square map
    ("07", "corner_share", "h, w = cam.shape\nc = max(1, round(corner_size * h))\nt = cam.sum()\n"
                           "return 0.0 if t <= 0 else float((cam[:c, :c].sum() + cam[:c, -c:].sum() + "
                           "cam[-c:, :c].sum() + cam[-c:, -c:].sum()) / t)", "高さと幅"),
    ("07", "corner_share", "h, w = cam.shape\nch, cw = round(corner_size * h), round(corner_size * w)\n"
                           "return float((cam[:ch, :cw].sum() + cam[:ch, w - cw:].sum() + "
                           "cam[h - ch:, :cw].sum() + cam[h - ch:, w - cw:].sum()) / cam.sum())",
     "全部 0"),
    ("07", "corner_share", "h, w = cam.shape\nch, cw = round(corner_size * h), round(corner_size * w)\n"
                           "t = cam.sum()\nreturn 0.0 if t <= 0 else float((cam[:ch, :cw].sum() + "
                           "cam[:ch, w - cw:].sum()) / t)", "左下"),
    # accuracy by tag presence instead of agreement with the label
    ("07", "accuracy_by_tag", "pred, labels, t = map(np.asarray, (pred, labels, has_tag))\n"
                              "ok = pred == labels\nreturn float(ok[t].mean()), float(ok[~t].mean())",
     "一致"),
    ("08", "top_k", "order = np.argsort(logits)[:k]\nz = np.exp(logits - logits.max())\n"
                    "return order, (z / z.sum())[order]", "小さい順"),
    ("08", "top_k", "order = np.argsort(-logits)[:k]\nreturn order, logits[order]", "softmax"),
    ("08", "top_k", "order = np.argsort(-logits)[:k]\nz = np.exp(logits)\n"
                    "return order, (z / z.sum())[order]", "最大値を引"),
    ("08", "integrated_gradients", "return grad_fn(x[None])[0]", "勾配そのもの"),
    ("08", "integrated_gradients",
     "alphas = np.linspace(0, 1, steps)\n"
     "points = baseline[None] + alphas.reshape((-1,) + (1,) * x.ndim) * (x - baseline)[None]\n"
     "return grad_fn(points).mean(axis=0)", "(x - baseline)"),
    ("08", "integrated_gradients",                                   # the path starts at 0, not x'
     "alphas = np.linspace(0, 1, steps)\nw = np.full(steps, 1 / (steps - 1))\nw[[0, -1]] /= 2\n"
     "points = alphas.reshape((-1,) + (1,) * x.ndim) * x[None]\n"
     "return (x - baseline) * np.tensordot(w, grad_fn(points), axes=1)", "baseline"),
    ("08", "left_share", "return float(m[: m.shape[0] // 2].sum() / m.sum())", "上半分"),
    ("08", "left_share", "return float(m[:, : m.shape[1] // 2].sum() / m.sum())", "全部 0"),
    # deletion from the least salient pixel
    ("09", "deletion_images", "h, w = saliency.shape\norder = np.argsort(saliency.ravel(), kind='stable')\n"
                              "out = []\nfor s in range(steps + 1):\n    keep = np.ones(h * w, dtype=bool)\n"
                              "    keep[order[:int(np.ceil(s * h * w / steps))]] = False\n"
                              "    out.append(image * keep.reshape(h, w, 1))\nreturn np.stack(out)", "低い"),
    # one step too few
    ("09", "deletion_images", "h, w = saliency.shape\norder = np.argsort(-saliency.ravel())\n"
                              "out = []\nfor s in range(steps):\n    keep = np.ones(h * w, dtype=bool)\n"
                              "    keep[order[:int(np.ceil(s * h * w / steps))]] = False\n"
                              "    out.append(image * keep.reshape(h, w, 1))\nreturn np.stack(out)", "形"),
    # floor instead of ceil: the counts per step differ
    ("09", "deletion_images", "h, w = saliency.shape\norder = np.argsort(-saliency.ravel())\n"
                              "out = []\nfor s in range(steps + 1):\n    keep = np.ones(h * w, dtype=bool)\n"
                              "    keep[order[:s * h * w // steps]] = False\n"
                              "    out.append(image * keep.reshape(h, w, 1))\nreturn np.stack(out)", "数"),
    ("09", "average_drop", "return float(np.mean(np.maximum(original - explained, 0) / original))",
     "パーセント"),
    ("09", "average_drop", "return float(100 * np.mean((original - explained) / original))", "負の値"),
    ("09", "average_drop", "return float(100 * np.mean(np.maximum(original - explained, 0)))", "割って"),
    ("09", "rank_corr", "return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])", "Pearson"),
    ("09", "rank_corr", "a, b = np.ravel(a), np.ravel(b)\n"
                        "return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])",
     "同順位"),
    ("09", "rank_corr", "return float(np.corrcoef(rankdata(np.ravel(a)), rankdata(np.ravel(b)))[0, 1])",
     "一定"),
    # sorted from the largest value down: the sign flips
    ("09", "gini", "a = np.sort(np.abs(np.ravel(saliency)))[::-1]\nn = a.size\n"
                   "return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * a.sum()))", "昇順"),
    # not sorted at all
    ("09", "gini", "a = np.abs(np.ravel(saliency))\nn = a.size\n"
                   "return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * a.sum()))", "並べ替えて"),
    # divided by the sum only
    ("09", "gini", "a = np.sort(np.abs(np.ravel(saliency)))\nn = a.size\n"
                   "return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / a.sum())", "n で割って"),
    # signed values instead of their absolute values
    ("09", "gini", "a = np.sort(np.ravel(saliency))\nn = a.size\nif a.sum() == 0:\n    return 0.0\n"
                   "return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * a.sum()))", "絶対値"),
    # 0 / 0 on a map without mass
    ("09", "gini", "a = np.sort(np.abs(np.ravel(saliency)))\nn = a.size\n"
                   "return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * a) / (n * a.sum()))", "全部 0"),
    # q18 has no listed slips: any other number gets the question's hint
    ("10", "answer_q18", "answer_q18 = 1.0", QUESTIONS["q18"].hint),
    # counts the unreadable image's row (its flag is None, read as False)
    ("11", "flag_rate_by_folder", "return df[flag].fillna(False).astype(bool)"
                                  ".groupby(df['folder']).mean().to_dict()", "読めなかった"),
    # accuracy over all rows, flagged or not, for both numbers
    ("11", "accuracy_with_and_without", "ok = df[df['error'].isna()]\n"
                                        "a = float((ok['pred'] == ok['label']).mean())\nreturn a, a",
     "フラグのある 5 枚"),
    # sums the gradient over positions instead of averaging
    ("12", "gradcam_weights", "import jax\ng = jax.grad(lambda a: head(a)[target])(activations)\n"
                              "return np.asarray(g).sum(axis=(0, 1))", "合計"),
    # differentiates the sum of every class's score
    ("12", "gradcam_weights", "import jax\ng = jax.grad(lambda a: head(a).sum())(activations)\n"
                              "return np.asarray(g).mean(axis=(0, 1))", "すべてのクラス"),
    # differentiates the probability after softmax
    ("12", "gradcam_weights", "import jax\n"
                              "g = jax.grad(lambda a: jax.nn.softmax(head(a))[target])(activations)\n"
                              "return np.asarray(g).mean(axis=(0, 1))", "softmax"),
    # returns the whole gradient, not one weight per channel
    ("12", "gradcam_weights", "import jax\nreturn np.asarray(jax.grad(lambda a: head(a)[target])"
                              "(activations))", "形"),
    # returns a JAX array
    ("12", "gradcam_weights", "import jax\n"
                              "return jax.grad(lambda a: head(a)[target])(activations).mean(axis=(0, 1))",
     "NumPy"),
    # returns zeros: weights of the right shape that are not the gradient
    ("12", "gradcam_weights", "return np.full(activations.shape[-1], 0.0)", None),
    # lesson 13: keeps the class token, drops the last token, swaps rows and columns
    ("13", "tokens_to_grid", "return tokens", "形"),
    ("13", "tokens_to_grid", "return tokens[:, :-1].reshape(len(tokens), h, w, -1)", "先頭"),
    ("13", "tokens_to_grid",
     "return tokens[:, 1:].reshape(len(tokens), w, h, -1).transpose(0, 2, 1, 3)", "行と列"),
    # one rollout step without the identity, in the wrong order, with the max over heads
    ("13", "rollout_step", "return attention.mean(axis=0) @ previous", "単位行列"),
    ("13", "rollout_step", "a = (attention.mean(axis=0) + np.eye(len(previous))) / 2\n"
                           "return previous @ (a / a.sum(axis=-1, keepdims=True))", "逆"),
    ("13", "rollout_step", "a = (attention.max(axis=0) + np.eye(len(previous))) / 2\n"
                           "return a @ previous", "平均"),
    ("13", "rollout_step", "return attention.mean(axis=0)", None),
    # lesson 14: each column shuffled on its own, the sign reversed, accuracy instead of the loss,
    # the input shuffled in place, a new generator per repeat
    ("14", "grouped_permutation_importance",
     "from sklearn.metrics import log_loss\nbase = log_loss(y, predict_proba(X))\n"
     "rng = np.random.default_rng(seed)\nout = []\nfor _ in range(n_repeats):\n"
     "    s = X.copy()\n    for c in columns:\n        s[:, c] = X[rng.permutation(len(X)), c]\n"
     "    out.append(log_loss(y, predict_proba(s)) - base)\nreturn np.array(out)", "同じ行の並べ替え"),
    ("14", "grouped_permutation_importance",
     "from sklearn.metrics import log_loss\nbase = log_loss(y, predict_proba(X))\n"
     "rng = np.random.default_rng(seed)\nout = []\nfor _ in range(n_repeats):\n"
     "    o = rng.permutation(len(X))\n    s = X.copy()\n    s[:, columns] = X[o][:, columns]\n"
     "    out.append(base - log_loss(y, predict_proba(s)))\nreturn np.array(out)", "符号が逆"),
    ("14", "grouped_permutation_importance",
     "rng = np.random.default_rng(seed)\nout = []\nfor _ in range(n_repeats):\n"
     "    o = rng.permutation(len(X))\n    s = X.copy()\n    s[:, columns] = X[o][:, columns]\n"
     "    out.append(np.mean(predict_proba(X).argmax(1) == y) - np.mean(predict_proba(s).argmax(1) == y))\n"
     "return np.array(out)", None),
    ("14", "grouped_permutation_importance",
     "from sklearn.metrics import log_loss\nbase = log_loss(y, predict_proba(X))\n"
     "rng = np.random.default_rng(seed)\nout = []\nfor _ in range(n_repeats):\n"
     "    o = rng.permutation(len(X))\n    X[:, columns] = X[o][:, columns]\n"
     "    out.append(log_loss(y, predict_proba(X)) - base)\nreturn np.array(out)", "書き換えないで"),
    ("14", "grouped_permutation_importance",
     "from sklearn.metrics import log_loss\nbase = log_loss(y, predict_proba(X))\nout = []\n"
     "for _ in range(n_repeats):\n    o = np.random.default_rng(seed).permutation(len(X))\n"
     "    s = X.copy()\n    s[:, columns] = X[o][:, columns]\n"
     "    out.append(log_loss(y, predict_proba(s)) - base)\nreturn np.array(out)", "ループの外で 1 回"),
    # lesson 14: the prediction at the mean instead of the mean prediction, ICE transposed, X changed
    ("14", "ice_and_pd",
     "ice = np.empty((len(X), len(grid)))\nfor k, v in enumerate(grid):\n"
     "    c = X.copy()\n    c[:, feature] = v\n    ice[:, k] = predict(c)\n"
     "m = np.repeat(X.mean(axis=0)[None], len(grid), axis=0)\nm[:, feature] = grid\n"
     "return ice, predict(m)", "平均にした 1 点"),
    ("14", "ice_and_pd",
     "ice = np.empty((len(grid), len(X)))\nfor k, v in enumerate(grid):\n"
     "    c = X.copy()\n    c[:, feature] = v\n    ice[k] = predict(c)\n"
     "return ice, ice.mean(axis=1)", "(G, N)"),
    ("14", "ice_and_pd",
     "ice = np.empty((len(X), len(grid)))\nfor k, v in enumerate(grid):\n"
     "    X[:, feature] = v\n    ice[:, k] = predict(X)\n"
     "return ice, ice.mean(axis=0)", "書き換えないで"),
    ("14", "ice_and_pd",
     "ice = np.empty((len(X), len(grid)))\nfor k, v in enumerate(grid):\n"
     "    c = X.copy()\n    c[:, feature] = v\n    ice[:, k] = predict(c)\n"
     "return ice, ice.mean(axis=1)", None),
    # lesson 15: the positive class's map, no ReLU, the sign flipped after the ReLU
    ("15", "other_class_map", "return np.maximum(activations @ gradients.mean(axis=(0, 1)), 0)",
     "陽性のクラス"),
    ("15", "other_class_map", "return activations @ -gradients.mean(axis=(0, 1))", "ReLU"),
    ("15", "other_class_map", "return -np.maximum(activations @ gradients.mean(axis=(0, 1)), 0)",
     "ReLU の後で符号"),
    ("15", "other_class_map", "return np.maximum(activations @ -gradients.sum(axis=(0, 1)), 0)", None),
    # the intersection counted twice, inclusive ends, negative overlaps multiplied, the smaller area
    ("15", "box_iou", "iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)\n"
                      "ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)\n"
                      "return iw * ih / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]))",
     "2 回数えて"),
    ("15", "box_iou", "iw = max(min(a[2], b[2]) - max(a[0], b[0]) + 1, 0)\n"
                      "ih = max(min(a[3], b[3]) - max(a[1], b[1]) + 1, 0)\n"
                      "area = lambda c: (c[2] - c[0] + 1) * (c[3] - c[1] + 1)\n"
                      "return iw * ih / (area(a) + area(b) - iw * ih)", "終端を含めて"),
    ("15", "box_iou", "iw = min(a[2], b[2]) - max(a[0], b[0])\n"
                      "ih = min(a[3], b[3]) - max(a[1], b[1])\n"
                      "area = lambda c: (c[2] - c[0]) * (c[3] - c[1])\n"
                      "return iw * ih / (area(a) + area(b) - iw * ih)", "離れた箱"),
    ("15", "box_iou", "iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)\n"
                      "ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)\n"
                      "return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))",
     "小さい方"),
    # the share inside, the share of pixels, no guard for an all-zero map, the mean outside
    ("15", "energy_outside", "return float(cam[region].sum() / cam.sum()) if cam.sum() > 0 else 0.0",
     "中"),
    ("15", "energy_outside", "return float((~region).mean())", "画素の数"),
    ("15", "energy_outside", "return float(cam[~region].sum() / cam.sum())", "NaN"),
    ("15", "energy_outside", "return float(cam[~region].mean())", None),
] + [
    # lesson 10: every slip the checker knows gets its reason
    ("10", f"answer_{qid}", f"answer_{qid} = {wrong!r}", f"不正解です。{why}")
    for qid, q in QUESTIONS.items() for wrong, why in q.why_wrong.items()
]

# (lesson, checker name, a whole wrong function, the phrase its message must contain)
WRONG_FUNCTIONS = [
    ("01", "check_normalize",
     "def answer(raw):\n    raw[...] = 0\n    return np.expand_dims(raw / 255.0, -1)\n", "書き換え"),
    ("02", "check_confusion_matrix",
     "def answer(y_true, y_pred, k):\n    cm = np.zeros((k, k), int)\n"
     "    np.add.at(cm, (y_pred, y_true), 1)\n    return cm\n", "行と列が逆"),
    ("03", "check_bgr_to_rgb", "def answer(img):\n    return img[:, ::-1]\n", "上下や左右"),
    ("04", "check_gradcam_maps",
     "def answer(activations, gradients):\n"
     "    gradients -= gradients.mean(axis=0)       # changes the caller's array\n"
     "    return np.maximum(np.einsum('nhwk,nk->nhw', activations, gradients.mean(axis=(1, 2))), 0)\n",
     "書き換え"),
]


def _lesson(key: str) -> Lesson:
    lesson = LESSONS[key]
    for module in lesson.needs:
        pytest.importorskip(module)
    return lesson


def _cells(key: str) -> dict[str, str]:
    return solution_cells(NOTEBOOKS / LESSONS[key].notebook)


def _checker(key: str, name: str):
    return _lesson(key).checker(name)


EXERCISES = [(key, name) for key, lesson in LESSONS.items() for name in lesson.exercises]
IDS = [f"{key}-{name}" for key, name in EXERCISES]


@pytest.mark.parametrize("key", sorted(LESSONS))
def test_notebook_has_the_tabled_exercises_and_their_check_cells(key):
    lesson = LESSONS[key]
    assert set(_cells(key)) == set(lesson.exercises), lesson.notebook
    nb = nbformat.read(NOTEBOOKS / lesson.notebook, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    for name in lesson.exercises:
        call = lesson.check_call(name)
        assert any(call in s for s in sources), f"{lesson.notebook}: no check cell calls {call}"


@pytest.mark.parametrize("key, name", EXERCISES, ids=IDS)
def test_committed_solution_passes(key, name, capsys):
    _checker(key, name)(define(_cells(key)[name], name))
    assert "正解" in capsys.readouterr().out


@pytest.mark.parametrize("key, name", EXERCISES, ids=IDS)
def test_student_stub_does_not_pass(key, name):
    stub = replace_solutions(_cells(key)[name])
    assert STUB.splitlines()[0] in stub and "BEGIN SOLUTION" not in stub
    with pytest.raises((NotImplementedError, AssertionError)):
        _checker(key, name)(define(stub, name))


@pytest.mark.parametrize("key, name, body, hint", WRONG_BODIES,
                         ids=[f"{k}-{n}-{i}" for i, (k, n, _, _) in enumerate(WRONG_BODIES)])
def test_wrong_answer_fails(key, name, body, hint):
    source = replace_solutions(_cells(key)[name], body)
    assert "BEGIN SOLUTION" not in source
    with pytest.raises(AssertionError) as info:
        _checker(key, name)(define(source, name))
    if hint is not None:
        assert hint in str(info.value), f"expected the hint {hint!r}; got {info.value}"


@pytest.mark.parametrize("key, checker, source, hint", WRONG_FUNCTIONS,
                         ids=[f"{k}-{c}" for k, c, _, _ in WRONG_FUNCTIONS])
def test_wrong_function_gets_its_hint(key, checker, source, hint):
    with pytest.raises(AssertionError) as info:
        getattr(_lesson(key).checkers, checker)(define(source, "answer"))
    assert hint in str(info.value), f"expected the hint {hint!r}; got {info.value}"


def test_every_lesson_has_wrong_answers_for_every_exercise():
    covered = {(k, n) for k, n, _, _ in WRONG_BODIES}
    assert covered == set(EXERCISES), sorted(set(EXERCISES) - covered)


# --- lesson 10 (E資格 review): what only a quiz has -------------------------------------------

@pytest.fixture(scope="module")
def lesson10_cells():
    return nbformat.read(NOTEBOOKS / LESSONS["10"].notebook, as_version=4).cells


def _question_cells(cells, qid):
    """(markdown, answer cell, check cell) of one question: the check cell follows the answer cell."""
    n = int(qid[1:])
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and cell.source.startswith(f"**問 {n}** "):
            return cell, cells[i + 1], cells[i + 2]
    raise AssertionError(f"no markdown cell starts with **問 {n}**")


FILL_INS = sorted(qid for qid, q in QUESTIONS.items() if q.kind == "fill")
LETTERED = {qid: q for qid, q in QUESTIONS.items() if q.kind in ("choice", "fill")}


def _stem(cells, qid: str) -> str:
    return _question_cells(cells, qid)[0].source


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return float(found.group(1).replace("−", "-"))


def test_lesson10_at_least_35_questions_cover_the_syllabus():
    assert len(QUESTIONS) >= 35
    assert len(FILL_INS) >= 3                              # the exam's code fill-in style
    topics = " ".join(q.topic for q in QUESTIONS.values())
    for word in ("CAM", "GAP", "ReLU", "softmax", "層", "形", "Grad-CAM++", "Score-CAM", "Guided",
                 "Sanity", "Integrated Gradients", "感度", "実装不変性", "局所", "LIME", "目的関数",
                 "解釈可能な表現", "SHAP", "一貫性", "TreeSHAP", "Shapley", "計算量", "サンプリング",
                 "permutation feature importance", "PD と ICE", "代理モデル", "アテンション", "rollout",
                 "ViT", "反実仮想", "セグメンテーション", "2 値分類"):
        assert word in topics, word
    cam_family = [qid for qid, q in QUESTIONS.items() if "CAM" in q.topic or q.topic.startswith("形")]
    assert len(cam_family) <= len(QUESTIONS) / 2, cam_family


@pytest.mark.parametrize("qid", sorted(QUESTIONS))
def test_lesson10_notebook_shows_the_question_as_the_checker_knows_it(lesson10_cells, qid, capsys):
    text, answer, check = _question_cells(lesson10_cells, qid)
    q = QUESTIONS[qid]
    assert f"({q.topic})" in text.source
    shown = re.findall(r"^- \(([a-z])\) (.*)$", text.source, re.M)
    if q.kind == "fill":                                   # code fragments are shown as `code`
        assert f"```python\n{q.code}\n```" in text.source
        shown = [(letter, body.removeprefix("`").removesuffix("`")) for letter, body in shown]
    assert shown == list(q.choices.items())
    assert answer.cell_type == "code" and has_solution(answer.source)
    assert f"answer_{qid} = " in answer.source
    assert repr(q.answer) not in replace_solutions(answer.source)     # the student copy is blank
    assert check.cell_type == "code" and check.source.strip() == f'check_answer("{qid}", answer_{qid})'
    # the right answer prints the worked explanation, and the executed notebook shows it did
    check_answer(qid, define(answer.source, f"answer_{qid}"))
    assert q.explanation in capsys.readouterr().out
    assert any("正解です" in o.get("text", "") for o in check.outputs)


def test_lesson10_every_wrong_choice_has_a_reason():
    for qid, q in LETTERED.items():
        assert tuple(q.choices) == LETTERS, qid
        assert q.answer in q.choices, qid
        assert set(q.why_wrong) == set(q.choices) - {q.answer}, qid


# The balance of the question table: a learner must not be able to score by position or by length.

def _table(answers_and_lengths):
    """A made-up question table: one lettered question per (right letter, right length, wrong length)."""
    return {f"x{i}": Question("t", "choice", right, "",
                              choices={k: "あ" * (right_len if k == right else wrong_len) for k in LETTERS})
            for i, (right, right_len, wrong_len) in enumerate(answers_and_lengths)}


def test_balance_statistics_on_a_table_worked_out_by_hand():
    table = _table([("a", 10, 5), ("a", 5, 10), ("a", 5, 5), ("b", 3, 9)])
    assert answer_shares(table) == {"a": 0.75, "b": 0.25, "c": 0.0, "d": 0.0}
    assert [right_is_longest(q) for q in table.values()] == [True, False, True, False]   # a tie counts
    assert longest_right_share(table) == 0.5
    numbers_only = {"n": Question("t", "number", 1.0, "")}
    assert answer_shares(numbers_only) == dict.fromkeys(LETTERS, 0.0) and longest_right_share(numbers_only) == 0


def test_lesson10_answer_letters_are_balanced():
    shares = answer_shares()
    assert len(LETTERED) >= 20
    for letter, share in shares.items():
        assert 0.15 <= share <= 0.35, (f"the right answer is ({letter}) in {share:.0%} of the "
                                       f"{len(LETTERED)} lettered questions; move some answers: {shares}")


def test_lesson10_right_option_is_not_the_longest_as_a_rule():
    share = longest_right_share()
    longest = [qid for qid, q in LETTERED.items() if right_is_longest(q)]
    assert share <= 0.40, f"the right option is the longest in {longest}: lengthen their distractors"
    assert share >= 0.10, "the right option is almost never the longest: that is a cue too"


# Fill-in questions: the check runs the code, so the table must say what the code says.

@pytest.mark.parametrize("qid", FILL_INS)
def test_lesson10_fill_in_only_the_right_fragment_gives_the_expected_result(qid):
    q = QUESTIONS[qid]
    assert q.code.count("____") == 1 and "result" in q.code
    expected = np.asarray(q.expected, dtype=float)
    for letter in q.choices:
        try:
            got = run_fill_in(qid, letter)
        except Exception:                      # a wrong fragment may fail to run: it is not right
            assert letter != q.answer, f"{qid}: the right fragment raised"
            continue
        right = got.shape == expected.shape and np.allclose(got, expected)
        assert right == (letter == q.answer), f"{qid} ({letter}) gives {got}"


def test_lesson10_fill_in_expected_values_by_an_independent_computation():
    # q11: Grad-CAM on the two images of the program, weights per image and channel
    scope = {"np": np}
    exec(QUESTIONS["q11"].code.replace("weights = ____\n", "").split("result =")[0], scope)
    weights = scope["grads"].mean(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwk,nk->nhw", scope["A"], weights), 0)
    assert np.allclose(cam, QUESTIONS["q11"].expected)
    # q21: the exact IG of F(p) = p0² + 3·p1 from x' = (0.5, 1) to x = (1, 2)
    assert np.allclose([1.0 ** 2 - 0.5 ** 2, 3 * (2.0 - 1.0)], QUESTIONS["q21"].expected)
    # q35: Shapley values of the voting game (2, 1, 1 votes, quota 3) by all 3! orders
    votes, phi = [2, 1, 1], np.zeros(3)
    for order in itertools.permutations(range(3)):
        total = 0
        for player in order:
            phi[player] += float(total + votes[player] >= 3) - float(total >= 3)
            total += votes[player]
    assert np.allclose(phi / 6, QUESTIONS["q35"].expected)
    # q40: rollout of the two layers, (A + I)/2 renormalised, later layer on the left
    a1, a2 = np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([[0.5, 0.5], [0.0, 1.0]])
    r1, r2 = (a1 + np.eye(2)) / 2, (a2 + np.eye(2)) / 2
    assert np.allclose(r2 @ r1, QUESTIONS["q40"].expected)


def test_lesson10_fill_in_check_shows_what_the_chosen_code_computes(capsys):
    check_answer("q21", "c")
    assert "実行結果 result = [0.75, 3.  ]" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"不正解です。.*実行結果 result = \[1\.5, 6\. \]"):
        check_answer("q21", "a")
    with pytest.raises(KeyError, match="not a fill-in"):
        run_fill_in("q01", "a")


def test_lesson10_unanswered_and_malformed_answers_say_what_to_enter():
    with pytest.raises(AssertionError, match="まだ答えていません"):
        check_answer("q01", None)
    with pytest.raises(AssertionError, match="選択肢の記号"):
        check_answer("q01", "e")
    with pytest.raises(AssertionError, match="選択肢の記号"):
        check_answer("q11", 2)
    with pytest.raises(AssertionError, match="数を 1 つ"):
        check_answer("q04", "121")
    with pytest.raises(AssertionError, match="タプル"):
        check_answer("q09", 11)
    with pytest.raises(AssertionError, match="もう一度|hint|Σ|平均|形"):
        check_answer("q04", 100)
    with pytest.raises(KeyError, match="unknown question"):
        check_answer("q99", "a")
    check_answer("q03", " A ")          # case and spaces are forgiven
    check_answer("q09", [11, 11, 64])   # a list is a shape too


# Numeric answers follow from the question or from the course's model, not from the table.

def test_lesson10_numeric_answers_are_computed_not_made_up():
    pytest.importorskip("keras")
    from gradcam_helpers.course.models.keras_mnist import build_mnist_cnn

    model = build_mnist_cnn()
    h, w, k = model.get_layer("conv2").output.shape[1:]
    assert QUESTIONS["q09"].answer == (h, w, k)
    assert QUESTIONS["q04"].answer == h * w
    assert QUESTIONS["q10"].answer == k


def test_lesson10_shapley_answer_follows_from_the_game_in_the_question(lesson10_cells):
    values = {}
    for members, value in re.findall(r"v\(\\\{([A-C,]+)\\\}\)=(\d+)", _stem(lesson10_cells, "q31")):
        values[frozenset(members.split(","))] = float(value)
    values[frozenset()] = 0.0
    assert len(values) == 8
    players = ["A", "B", "C"]
    phi = {}
    for p in players:
        others = [q for q in players if q != p]
        phi[p] = sum(math.factorial(len(s)) * math.factorial(2 - len(s)) / 6
                     * (values[frozenset(s) | {p}] - values[frozenset(s)])
                     for r in range(3) for s in itertools.combinations(others, r))
    assert math.isclose(sum(phi.values()), values[frozenset(players)])
    assert math.isclose(phi["A"], QUESTIONS["q31"].answer)


def test_lesson10_ig_answers_follow_from_the_questions(lesson10_cells):
    stem = _stem(lesson10_cells, "q17")
    f_x, f_base = _number(r"F\(x\) = ([\d.]+)", stem), _number(r"F\(x'\) = ([\d.]+)", stem)
    assert math.isclose(QUESTIONS["q17"].answer, f_x - f_base)
    # q19: F(x) = 1 − ReLU(1 − x) from 0 to 2; the gradient at x = 2 is 0, IG by a fine midpoint sum
    def grad(t):
        return (t < 1).astype(float)
    alphas = (np.arange(100_000) + 0.5) / 100_000
    assert grad(np.array([2.0]))[0] == 0
    assert math.isclose((2.0 - 0.0) * grad(alphas * 2.0).mean(), QUESTIONS["q19"].answer, rel_tol=1e-4)


def test_lesson10_shap_and_cost_answers_follow_from_the_questions(lesson10_cells):
    stem = _stem(lesson10_cells, "q27")
    phis = [_number(rf"\\phi_{i} = (-?[\d.]+)", stem) for i in range(3)]
    assert math.isclose(QUESTIONS["q27"].answer, _number(r"f\(x\) = ([\d.]+)", stem) - sum(phis))
    stem = _stem(lesson10_cells, "q33")
    players = int(_number(r"特徴量が (\d+) 個", stem))
    assert QUESTIONS["q33"].answer == len(list(itertools.product([0, 1], repeat=players)))
    stem = _stem(lesson10_cells, "q34")
    m, se = _number(r"M = (\d+)", stem), _number(r"標準誤差が ([\d.]+)", stem)
    target = _number(r"標準誤差を ([\d.]+) に", stem)
    assert math.isclose(QUESTIONS["q34"].answer, m * (se / target) ** 2)
    stem = _stem(lesson10_cells, "q41")
    side, patch = _number(r"(\d+)×\1 の画像", stem), _number(r"\((\d+)×\d+ 画素のパッチ\)", stem)
    assert QUESTIONS["q41"].answer == (int(side // patch),) * 2


def test_lesson10_counterfactual_answer_is_the_smallest_change_that_flips_the_decision(lesson10_cells):
    stem = _stem(lesson10_cells, "q43")
    names = ("年収", "借入", "勤続年数")
    formula = re.search(r"s = ([\d.]+) \\cdot 年収 - ([\d.]+) \\cdot 借入 \+ ([\d.]+) \\cdot 勤続年数 - ([\d.]+)\$",
                        stem)
    person = re.search(r"年収 ([\d.]+)、借入 ([\d.]+)、勤続年数 ([\d.]+) の人", stem)
    assert formula and person, stem
    w1, w2, w3, bias = map(float, formula.groups())
    weights, bias = np.array([w1, -w2, w3]), -bias
    person = np.array([float(v) for v in person.groups()])
    assert math.isclose(weights @ person + bias, _number(r"s = ([−-][\d.]+)", stem))
    smallest = min(-(weights @ person + bias) / abs(w) for w in weights)   # one feature, |Δ| to reach s = 0
    q = QUESTIONS["q43"]
    for letter, text in q.choices.items():
        name, delta = re.match(r"(年収|借入|勤続年数)を ([+−][\d.]+)", text).groups()
        delta = float(delta.replace("−", "-"))
        changed = person.copy()
        changed[names.index(name)] += delta
        approved = weights @ changed + bias >= -1e-9
        if letter == q.answer:
            assert approved and math.isclose(abs(delta), smallest), text
        else:
            assert not approved or abs(delta) > smallest, text
