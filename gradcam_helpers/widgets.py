"""An interactive explorer (ipywidgets): pick an image, a class, a layer, a method and the overlay
alpha, and the map updates in place.

::

    from gradcam_helpers.widgets import explore
    ex = explore(model, images, class_names=names, layers=["conv1", "conv2"],
                 methods=["gradcam", "gradcam++", "layercam"])

Every map comes from :func:`gradcam_helpers.explain`, so the explorer works for Keras and PyTorch
models alike and shows exactly what the lessons compute. Each map is computed once and cached, so
going back to a setting is instant.

Next to the live widget, :func:`explore` also shows a static figure (a grid: images × methods,
each image's top class). A notebook saved with its outputs therefore still reads well on a code
host, where widgets do not render.

The returned :class:`Explorer` can be driven from Python (``ex.image = 3``, ``ex.target = 5``,
``ex.alpha = 0``): tests use that, and a lesson can use it to set up a view before the learner takes
over. ``ex.displayed`` is the RGB picture the widget shows, decoded from the very bytes sent to it.
"""
from __future__ import annotations

import contextlib
import html
import io
import time
from typing import Any, Mapping, Sequence

import numpy as np

from .course.overlay import overlay, to_rgb_float
from .engine.maps import softmax, to_numpy
from .engine.pipeline import Explainer, Explanation
from .engine.registry import get_method

#: Methods the explorer offers when ``methods=None``: cheap ones (one backward pass each).
DEFAULT_METHODS = ("gradcam", "gradcam++", "layercam")


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes (e.g. an ``ipywidgets.Image`` value) → (H, W, 3) uint8 RGB."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _upscale(rgb: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor so the long side is about ``size`` px."""
    factor = max(1, int(size) // max(rgb.shape[:2]))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


class Explorer:
    """The live explorer behind :func:`explore`. See there for the parameters.

    Attributes
    ----------
    widget : ipywidgets.Widget
        The whole explorer; display it (``display(ex.widget)``) or let :func:`explore` do it.
    controls : dict[str, ipywidgets.Widget]
        ``"image"`` (IntSlider), ``"target"`` (Dropdown of the top-k classes), ``"layer"``,
        ``"method"`` (Dropdowns) and ``"alpha"`` (FloatSlider).
    view, plain : ipywidgets.Image
        The overlay and the plain input image, as PNG.
    info : ipywidgets.HTML
        One line: true class, prediction, the class shown, layer, method, time — or the error.
    error : str or None
        The message of the last failed update (e.g. CAM asked of a model without GAP), else None.
    """

    def __init__(self, model, images, *, class_names: Sequence[str] | Mapping[int, str] | None = None,
                 labels: Sequence[int] | None = None, layers: Sequence[Any] | None = None,
                 methods: Sequence[str] | None = None, top_k: int = 5, alpha: float = 0.5,
                 cmap: str = "jet", display_images=None, display_size: int = 224,
                 explain_options: Mapping[str, Any] | None = None):
        import ipywidgets as w

        self.model = model
        self.images = images
        n = len(images)
        if n < 1:
            raise ValueError("explore() needs at least one image: pass a batch (N, ...) with N >= 1")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1; got {top_k}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
        if labels is not None and len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} images: pass one true class per image "
                             "or labels=None")
        self.methods = list(DEFAULT_METHODS if methods is None else methods)
        if not self.methods or not all(isinstance(m, str) for m in self.methods):
            raise ValueError(f"methods must be a non-empty list of method names, e.g. "
                             f"{list(DEFAULT_METHODS)}; got {methods!r}")
        for method in self.methods:  # every name now, not when the learner first picks it
            get_method(method)
        self.layers = [None] if layers is None else list(layers)
        if not self.layers:
            raise ValueError("layers must be None (the automatic layer) or a non-empty list of layers")
        self.labels = None if labels is None else [int(v) for v in labels]
        self.top_k = int(top_k)
        self.cmap = cmap
        self.display_size = int(display_size)
        self.explain_options = dict(explain_options or {})
        self._explainers: dict[Any, Explainer] = {}
        self.error: str | None = None
        self._cache: dict[tuple, Any] = {}
        self._logits: dict[int, np.ndarray] = {}
        self._quiet = False
        self._seconds: dict[tuple, float] = {}

        # The first explanation tells the framework (for the channel axis), the automatic layer's
        # name and the number of classes; a misuse fails here, at the call, with explain()'s message.
        first = self._compute(0, self.layers[0], self.methods[0], None)
        self.framework = first.framework
        self.num_classes = first.logits.shape[1]
        self.class_names = self._check_names(class_names, self.num_classes)
        self.top_k = min(self.top_k, self.num_classes)
        if display_images is None:  # the model's inputs, channels last whatever the framework
            adapter = self._explainer(self.layers[0]).adapter
            shown = adapter.to_channels_last(adapter.validate(images))
        else:
            shown = to_numpy(display_images)
        if len(shown) != n:
            raise ValueError(f"display_images has {len(shown)} images but images has {n}")
        self._rgb = [to_rgb_float(img) for img in shown]

        # the dropdown's values are indices into self.layers (a value None would mean "no selection")
        layer_options = [(self._layer_label(layer, first), k) for k, layer in enumerate(self.layers)]
        style = {"description_width": "7em"}
        box = w.Layout(width="22em")
        self.controls = {
            "image": w.IntSlider(value=0, min=0, max=n - 1, description="画像", style=style,
                                 layout=box, continuous_update=False),
            "target": w.Dropdown(options=self._class_options(0), description="クラス", style=style,
                                 layout=box),
            "layer": w.Dropdown(options=layer_options, value=0, description="層",
                                style=style, layout=box),
            "method": w.Dropdown(options=self.methods, value=self.methods[0], description="手法",
                                 style=style, layout=box),
            "alpha": w.FloatSlider(value=float(alpha), min=0.0, max=1.0, step=0.05,
                                   description="重ね具合 α", style=style, layout=box,
                                   continuous_update=True, readout_format=".2f"),
        }
        self.plain = w.Image(format="png", layout=w.Layout(margin="0 4px"))
        self.view = w.Image(format="png", layout=w.Layout(margin="0 4px"))
        self.info = w.HTML()
        for name, control in self.controls.items():
            control.observe(self._on_image if name == "image" else self._on_change, names="value")
        pictures = w.HBox([w.VBox([w.HTML("<b>入力画像</b>"), self.plain]),
                           w.VBox([w.HTML("<b>重ね合わせ</b>"), self.view])])
        self.widget = w.HBox([w.VBox(list(self.controls.values())), w.VBox([pictures, self.info])])
        self.widget.add_class("gradcam-explorer")
        self._plain_image = -1
        self._update()

    # ------------------------------------------------------------------ state, settable from Python

    @property
    def image(self) -> int:
        """Index of the image shown."""
        return int(self.controls["image"].value)

    @image.setter
    def image(self, index: int) -> None:
        n = len(self._rgb)
        if not 0 <= int(index) < n:
            raise ValueError(f"image index {index} is out of range: there are {n} images (0 … {n - 1})")
        self.controls["image"].value = int(index)

    @property
    def target(self) -> int:
        """The class explained; one of the image's top-k classes."""
        return int(self.controls["target"].value)

    @target.setter
    def target(self, cls: int) -> None:
        allowed = [v for _, v in self.controls["target"].options]
        if int(cls) not in allowed:
            raise ValueError(f"class {cls} is not among this image's top-{self.top_k} classes "
                             f"{allowed}; pick one of them or create the explorer with a larger top_k")
        self.controls["target"].value = int(cls)

    @property
    def layer(self):
        """The layer explained (as passed in ``layers``; None = automatic)."""
        return self.layers[self.controls["layer"].value]

    @layer.setter
    def layer(self, layer) -> None:
        matches = [k for k, v in enumerate(self.layers) if layer is v or
                   (isinstance(layer, str) and isinstance(v, str) and layer == v)]
        if not matches:
            raise ValueError(f"layer {layer!r} is not one of the explorer's layers {self.layers}")
        self.controls["layer"].value = matches[0]

    @property
    def method(self) -> str:
        return str(self.controls["method"].value)

    @method.setter
    def method(self, method: str) -> None:
        if method not in self.methods:
            raise ValueError(f"method {method!r} is not one of the explorer's methods {self.methods}")
        self.controls["method"].value = method

    @property
    def alpha(self) -> float:
        """Weight of the heatmap in the overlay: 0 shows the plain image, 1 only the heatmap."""
        return float(self.controls["alpha"].value)

    @alpha.setter
    def alpha(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {value}")
        self.controls["alpha"].value = float(value)

    def set(self, **state) -> "Explorer":
        """Set several controls at once (``image``, ``target``, ``layer``, ``method``, ``alpha``);
        the view is drawn once, at the end. ``image`` is applied first, since it resets the class."""
        unknown = set(state) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; use {list(self.controls)}")
        if "image" in state:
            self.image = state.pop("image")
        with self._hold():
            for name, value in state.items():
                setattr(self, name, value)
        self._update()
        return self

    # ------------------------------------------------------------------ what is shown

    @property
    def explanation(self):
        """The :class:`~gradcam_helpers.Explanation` (one image) behind the current view."""
        return self._compute(self.image, self.layer, self.method, self.target)

    @property
    def current_map(self) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the map shown, at the input's resolution."""
        return self.explanation.maps[0]

    @property
    def displayed(self) -> np.ndarray:
        """(H', W', 3) uint8: the overlay as the widget shows it (decoded from its PNG bytes)."""
        return decode_png(self.view.value)

    @property
    def displayed_plain(self) -> np.ndarray:
        """(H', W', 3) uint8: the plain input image as the widget shows it."""
        return decode_png(self.plain.value)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_names(class_names, num_classes: int) -> dict[int, str]:
        if class_names is None:
            return {}
        if isinstance(class_names, Mapping):
            return {int(k): str(v) for k, v in class_names.items()}
        names = list(class_names)
        if len(names) != num_classes:
            raise ValueError(f"class_names has {len(names)} names but the model has {num_classes} "
                             "classes: pass one name per class (or a dict {class index: name})")
        return dict(enumerate(map(str, names)))

    @staticmethod
    def _layer_label(layer, first) -> str:
        if layer is None:
            return f"自動 ({first.layer})"
        return layer if isinstance(layer, str) else getattr(layer, "name", type(layer).__name__)

    def _name(self, cls: int) -> str:
        name = self.class_names.get(int(cls))
        return f"{cls}: {name}" if name else str(cls)

    @staticmethod
    def _key(index: int, layer, method: str, target) -> tuple:
        layer_key = id(layer) if layer is not None and not isinstance(layer, str) else layer
        return (index, layer_key, method, target)

    def _explainer(self, layer: Any) -> Explainer:
        """The Explainer of one layer (built on first use, with ``explain_options``)."""
        key = self._key(0, layer, "", None)[1]
        if key not in self._explainers:
            self._explainers[key] = Explainer(self.model, layer, **self.explain_options)
        return self._explainers[key]

    def _compute(self, index: int, layer, method: str, target) -> Explanation:
        key = self._key(index, layer, method, target)
        res = self._cache.get(key)
        if res is None:
            start = time.perf_counter()
            batch = self.images[index:index + 1]
            res = self._explainer(layer)(batch, method=method, target=target)
            self._cache[key] = res
            self._seconds[key] = time.perf_counter() - start
            self._logits.setdefault(index, np.asarray(res.logits[0]))
            if target is None:  # the same map under its explicit class: reused by the dropdown
                explicit = key[:3] + (int(res.targets[0]),)
                self._cache[explicit] = res
                self._seconds[explicit] = self._seconds[key]
        return res

    def _top(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._logits:
            self._compute(index, self.layers[0], self.methods[0], None)
        z = self._logits[index].astype(np.float64)
        p = softmax(z)
        order = np.argsort(-z, kind="stable")[: self.top_k]
        return order, p

    def _class_options(self, index: int) -> list[tuple[str, int]]:
        order, p = self._top(index)
        return [(f"{self._name(c)}  (p={p[c]:.3f})", int(c)) for c in order]

    @contextlib.contextmanager
    def _hold(self):
        quiet, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = quiet

    def _on_image(self, change) -> None:
        if self._quiet:
            return
        with self._hold():
            try:
                options = self._class_options(self.image)
            except Exception as err:  # shown in the widget: a callback's exception would be lost
                self._show_error(err)
                return
            self.controls["target"].options = options
            self.controls["target"].value = options[0][1]  # a new image starts at its top class
        self._update()

    def _on_change(self, change) -> None:
        if not self._quiet:
            self._update()

    def _show_error(self, err: Exception) -> None:
        self.error = f"{type(err).__name__}: {err}"
        self.info.value = f'<span style="color:#b00020">エラー: {html.escape(self.error)}</span>'

    def _update(self) -> None:
        i = self.image
        rgb = _upscale(self._rgb[i], self.display_size)
        if self._plain_image != i:
            self.plain.value = _png(np.round(rgb * 255).astype(np.uint8))
            self._plain_image = i
        try:
            res = self.explanation
        except Exception as err:
            self.view.value = self.plain.value  # no map: never leave another setting's map up
            self._show_error(err)
            return
        self.error = None
        self.view.value = _png(overlay(rgb, res.maps[0], alpha=self.alpha, cmap=self.cmap))
        order, p = self._top(i)
        c = int(res.targets[0])
        truth = "" if self.labels is None else f"正解 {self._name(self.labels[i])} · "
        self.info.value = (f"{truth}予測 {self._name(order[0])} (p={p[order[0]]:.3f}) · "
                           f"表示中のクラス {self._name(c)} (logit {res.logits[0, c]:.2f}) · "
                           f"層 {html.escape(str(res.layer))} · {html.escape(res.method)} · "
                           f"{self._last_seconds():.2f} s")

    def _last_seconds(self) -> float:
        return self._seconds.get(self._key(self.image, self.layer, self.method, self.target), 0.0)

    # ------------------------------------------------------------------ the static figure

    def static_figure(self, max_images: int = 4, size: float = 1.9):
        """A grid that reads without widgets: rows = the first ``max_images`` images, columns =
        the input and each method's overlay for the image's top class (first layer, current alpha).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        import matplotlib_fontja  # noqa: F401  (the titles are Japanese)

        rows = min(max_images, len(self._rgb))
        cols = 1 + len(self.methods)
        fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size + 0.4), squeeze=False)
        alpha = self.alpha if self.alpha > 0 else 0.5
        for r in range(rows):
            order, p = self._top(r)
            axes[r, 0].imshow(self._rgb[r])
            truth = "" if self.labels is None else f"正解 {self.labels[r]} / "
            axes[r, 0].set_ylabel(f"#{r} {truth}予測 {order[0]}", fontsize=9)
            for col, method in enumerate(self.methods, start=1):
                ax = axes[r, col]
                try:
                    res = self._compute(r, self.layers[0], method, None)
                except Exception as err:  # e.g. CAM on a model without GAP: say so in the cell
                    ax.text(0.5, 0.5, f"{type(err).__name__}", ha="center", va="center", fontsize=8)
                else:
                    ax.imshow(overlay(self._rgb[r], res.maps[0], alpha=alpha, cmap=self.cmap))
                if r == 0:
                    ax.set_title(method, fontsize=10)
        axes[0, 0].set_title("入力", fontsize=10)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("静的な図 (ウィジェットが表示されない環境向け): 各画像の予測クラス", fontsize=10)
        fig.tight_layout()
        return fig


class _Live:
    """Displays a widget with a readable text fallback: where widgets do not render (a code host,
    a terminal) the saved output says what it is instead of a long ``HBox(children=...)`` repr."""

    TEXT = ("[インタラクティブなエクスプローラー (ipywidgets): JupyterLab でセルを実行すると操作できます。"
            "下の静的な図が同じ内容です]")

    def __init__(self, widget):
        self.widget = widget

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data or {})
        data["text/plain"] = self.TEXT
        return data


def explore(model, images, *, class_names: Sequence[str] | Mapping[int, str] | None = None,
            layers: Sequence[Any] | None = None, methods: Sequence[str] | None = None,
            top_k: int = 5, labels: Sequence[int] | None = None, alpha: float = 0.5,
            cmap: str = "jet", display_images=None, display_size: int = 224, static: bool = True,
            static_images: int = 4, explain_options: Mapping[str, Any] | None = None) -> Explorer:
    """Show a live explorer of the model's maps, and a static figure beside it.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
    images : the batch to browse, as :func:`~gradcam_helpers.explain` takes it — Keras
        (N, H, W, C) array, PyTorch (N, C, H, W) tensor or array, preprocessed for the model
    class_names : optional, one name per class (a list) or ``{class index: name}``
    layers : optional list of layers to choose from (names, dotted paths or objects, as
        :func:`~gradcam_helpers.explain` takes them); None offers only the automatic layer
    methods : method names to choose from (default ``("gradcam", "gradcam++", "layercam")``);
        any method :func:`~gradcam_helpers.explain` knows
    top_k : the class dropdown offers each image's ``top_k`` highest-scoring classes
    labels : optional (N,) true classes, shown next to the prediction
    alpha : the initial overlay weight in [0, 1] (0 = plain image)
    cmap : matplotlib colormap of the heatmap
    display_images : optional (N, H, W[, C]) images to draw instead of ``images`` (e.g. the
        original photos when ``images`` are ImageNet-normalised tensors); uint8 or float in [0, 1]
    display_size : the pictures are enlarged (nearest neighbour, integer factor) to about this
        many pixels on the long side
    static : also show the static figure (:meth:`Explorer.static_figure`) below the widget
    static_images : rows of the static figure
    explain_options : keyword arguments of the :class:`~gradcam_helpers.Explainer` behind each
        layer: its settings and defaults for the methods' options (e.g.
        ``{"score_cam_batch_size": 32}``)

    Returns
    -------
    Explorer
        Set ``ex.image``, ``ex.target``, ``ex.layer``, ``ex.method``, ``ex.alpha`` (or
        ``ex.set(...)``) from Python; ``ex.current_map`` and ``ex.displayed`` are what is shown.
    """
    from IPython.display import display

    explorer = Explorer(model, images, class_names=class_names, labels=labels, layers=layers,
                        methods=methods, top_k=top_k, alpha=alpha, cmap=cmap,
                        display_images=display_images, display_size=display_size,
                        explain_options=explain_options)
    display(_Live(explorer.widget))
    if static:
        import matplotlib.pyplot as plt

        fig = explorer.static_figure(max_images=static_images)
        display(fig)
        plt.close(fig)
    return explorer
