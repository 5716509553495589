"""What only the lessons need, on top of the engine and the evaluation.

=========================== =======================================================================
module                      what is in it
=========================== =======================================================================
:mod:`.notebook`            ``setup_notebook()``: seeds, threads, quiet logs, Japanese fonts
:mod:`.mnist`               ``load_mnist()`` offline, digits placed on larger canvases with boxes
:mod:`.xray`                synthetic chest X-rays (with each shortcut pattern) and real-data loaders
:mod:`.models`              the lessons' networks: Keras MNIST CNNs, a plain-PyTorch ResNet,
                            EfficientNet-Lite0 with ImageNet weights in both frameworks
:mod:`.cache`               where trained models are cached, written atomically
:mod:`.overlay`             ``colorize``, ``overlay``, ``show_explanations`` (RGB figures)
:mod:`.backend_processes`   ``run_on_backends(code)``: the same code once per Keras backend, each
                            in its own process
:mod:`.exercises`           solution markers, student copies, each lesson's answer checkers
=========================== =======================================================================
"""
