"""Answer checkers for lesson 05 (the Sequential-model pitfall).

Each checker builds small Keras models of its own (random weights — the checks compare a model with
itself, so the values do not matter — and a few layers: seconds on a CPU),
calls the learner's function on them, compares with an answer computed here independently, and
raises ``AssertionError`` with a hint in Japanese when the answer is wrong.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np


def _ok(name: str) -> None:
    print(f"{name}: 正解です！ (all checks passed)")


def _tiny_layers(prefix: str):
    from keras import layers

    return [layers.Conv2D(4, 3, activation="relu", name=f"{prefix}conv_a"),
            layers.Conv2D(6, 3, activation="relu", name=f"{prefix}conv_b"),
            layers.GlobalAveragePooling2D(name=f"{prefix}gap"),
            layers.Dense(3, activation="softmax", name=f"{prefix}probs")]


def _grad_model_cases():
    """(description, model, layer name) for a Sequential and a Functional model."""
    import keras

    seq = keras.Sequential([keras.Input((9, 9, 2))] + _tiny_layers(""), name="check_sequential")
    inputs = keras.Input((9, 9, 2))
    x = inputs
    for layer in _tiny_layers(""):
        x = layer(x)
    func = keras.Model(inputs, x, name="check_functional")
    return [("Sequential", seq, "conv_b"), ("Functional", func, "conv_a")]


def check_make_grad_model(make_grad_model: Callable) -> None:
    """Check ``make_grad_model(model, layer_name) -> keras.Model`` that maps the model's input to
    ``[that layer's output, the model's output]``, for Sequential and Functional models alike."""
    x = np.random.default_rng(6).uniform(0, 1, size=(2, 9, 9, 2)).astype("float32")
    with warnings.catch_warnings():
        # a model built from the list model.inputs warns when called with one array; harmless here
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        _check_grad_models(make_grad_model, x)
    return _ok("check_make_grad_model")


def _check_grad_models(make_grad_model: Callable, x: np.ndarray) -> None:
    import keras

    for kind, model, name in _grad_model_cases():
        try:
            grad_model = make_grad_model(model, name)
        except AttributeError as err:
            if "never been called" in str(err):
                raise AssertionError(
                    f"{kind} モデルで AttributeError: {err}\n"
                    "model.output / model.input は Sequential では定義されていません。"
                    "model.outputs[0] と model.inputs を使ってください。") from err
            raise
        assert isinstance(grad_model, keras.Model), (
            f"{type(grad_model).__name__} が返りました。keras.Model を返してください。")
        outs = grad_model(x)
        assert isinstance(outs, (list, tuple)) and len(outs) == 2, (
            "出力は [層の出力, モデルの出力] の 2 つにしてください。")
        feature = keras.Model(model.inputs, model.get_layer(name).output)(x)
        assert tuple(outs[0].shape) == tuple(feature.shape) and np.allclose(outs[0], feature, atol=1e-6), (
            f"{kind} モデルで 1 つ目の出力が層 {name!r} の出力と一致しません "
            f"(形 {tuple(outs[0].shape)}、期待値 {tuple(feature.shape)})。"
            "model.get_layer(layer_name).output を使いましたか？")
        assert np.allclose(outs[1], model(x), atol=1e-6), (
            f"{kind} モデルで 2 つ目の出力がモデルの出力と一致しません。model.outputs[0] を使ってください。")


def _nested_model():
    """outer (Functional) → middle (Functional) → inner (Sequential): three levels of nesting."""
    import keras
    from keras import layers

    inner = keras.Sequential([keras.Input((8, 8, 4)),
                              layers.Conv2D(4, 3, padding="same", name="deep_conv")], name="inner")
    m_in = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, padding="same", name="middle_conv")(m_in)
    middle = keras.Model(m_in, inner(h), name="middle")
    o_in = keras.Input((8, 8, 3))
    h = middle(o_in)
    h = layers.Conv2D(5, 1, name="top_conv")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outer = keras.Model(o_in, layers.Dense(2, name="logits")(h), name="outer")
    return outer


def check_find_layer_path(find_layer_path: Callable) -> None:
    """Check ``find_layer_path(model, name) -> str | None``: the '/'-separated path of the layer
    called ``name`` inside nested models (e.g. ``"middle/inner/deep_conv"``), None when absent."""
    outer = _nested_model()
    cases = [("top_conv", "top_conv"), ("middle_conv", "middle/middle_conv"),
             ("deep_conv", "middle/inner/deep_conv"), ("inner", "middle/inner"),
             ("no_such_layer", None)]
    for name, expected in cases:
        got = find_layer_path(outer, name)
        if got == expected:
            continue
        if expected is None:
            raise AssertionError(f"存在しない層 {name!r} に {got!r} が返りました。見つからないときは None を返します。")
        if got is None and expected.count("/") >= 2:
            raise AssertionError(
                f"{name!r} が見つかりませんでした (期待値 {expected!r})。入れ子は 2 段以上あります: "
                "model.layers の中のモデルの中のモデル…と、再帰的にたどってください。")
        if got == name:
            raise AssertionError(f"{name!r} だけが返りました。外側のモデルの名前を '/' でつないだ経路 "
                                 f"{expected!r} を返してください。")
        raise AssertionError(f"find_layer_path(model, {name!r}) が {got!r} を返しました。期待値は {expected!r} です。")
    return _ok("check_find_layer_path")
