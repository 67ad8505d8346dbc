"""The streaming head as one recurrent step over T staggered windows ("step head").

A camera stream wants, after every frame, the clip model's answer on the last T frames: S RNN
steps, one per frame (S = T) or, for ``motion=pair`` models, one per pair of consecutive frames
(S = T - 1; the runtime keeps the previous frame and runs the encoder once per frame on the
pair). The RNN is not shift-invariant, so the S windows that end at S consecutive steps share no
state. The step head keeps all S of them in flight at once: S state rows ("slots"), slot ``s``
started at a step ``n`` with ``n % S == s``. On each new step feature ``x`` it advances every
slot by one step in one batched call -- one ``(1, F) x (F, G)`` input projection shared by all
slots, one ``(S, U) x (U, G)`` recurrent product -- and classifies every slot's new hidden state.
The slot that has now read exactly S steps gives the answer; the runtime then zeroes the oldest
slot, which starts the next window. This is exactly the clip model on the last T frames (zero
initial state, same weights, same gate equations), at the cost of one step per frame instead of S.

Inputs: ``feature`` ``[1, F]``, then per layer ``h`` (and ``c`` for LSTM) ``[S, U]``.
Outputs: ``probs`` ``[S, classes]``, then the new states in the same order as the inputs.
The files keep no state between calls: the runtime holds the state arrays and passes them in.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from edge_rcnn.core._keras import keras, tf
from edge_rcnn.core.config import InputMode, ModelConfig, RnnType
from edge_rcnn.core.errors import ModelFileError

STATE_OUTPUT_SUFFIX = "_out"  # output ``h0_out`` is the next call's input ``h0``


def state_names(config: ModelConfig) -> list[str]:
    """The state tensors' names in input (and output) order: ``h0, c0, h1, c1`` for LSTM, ``h0, h1`` for GRU."""
    per_layer = ("h", "c") if config.rnn is RnnType.LSTM else ("h",)
    return [f"{kind}{i}" for i in range(config.layers) for kind in per_layer]


@lru_cache(maxsize=None)
def _step_layer_class():
    k, tf_ = keras(), tf()

    class RnnStep(k.layers.Layer):
        """One LSTM/GRU step (tf_keras gate order and equations) for T slots at once."""

        def __init__(self, rnn: str, units: int, **kwargs):
            super().__init__(**kwargs)
            self.rnn, self.units = rnn, units

        def build(self, input_shape):
            x_dim, gates = int(input_shape[0][-1]), (4 if self.rnn == "lstm" else 3) * self.units
            self.kernel = self.add_weight(name="kernel", shape=(x_dim, gates))
            self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, gates))
            # LSTM: one bias; GRU (reset_after=True): input and recurrent biases, [2, 3U].
            self.bias = self.add_weight(name="bias", shape=(gates,) if self.rnn == "lstm" else (2, gates))

        def call(self, inputs):
            sig, tanh = tf_.math.sigmoid, tf_.math.tanh
            if self.rnn == "lstm":
                x, h, c = inputs
                z = tf_.matmul(x, self.kernel) + self.bias + tf_.matmul(h, self.recurrent_kernel)
                i, f, g, o = tf_.split(z, 4, axis=-1)
                c = sig(f) * c + sig(i) * tanh(g)
                return sig(o) * tanh(c), c
            x, h = inputs
            xz, xr, xh = tf_.split(tf_.matmul(x, self.kernel) + self.bias[0], 3, axis=-1)
            hz, hr, hh = tf_.split(tf_.matmul(h, self.recurrent_kernel) + self.bias[1], 3, axis=-1)
            z, r = sig(xz + hz), sig(xr + hr)
            candidate = tanh(xh + r * hh)
            return z * h + (1.0 - z) * candidate  # one state: a tensor, not a tuple with a None

    return RnnStep


class _QuietBatchSizes(logging.Filter):
    """The step head's inputs have batch 1 (feature) and T (states) on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "incompatible static batch sizes" not in record.getMessage()


_QUIET = _QuietBatchSizes()


def build_step_head(model, config: ModelConfig):
    """The step head of a trained clip ``model`` (weights copied), as a tf_keras model."""
    logging.getLogger("tensorflow").addFilter(_QUIET)  # idempotent: a logger keeps one copy of a filter
    if config.mode is not InputMode.CLIP:
        raise ModelFileError("streaming: only clip-mode models have a frame-by-frame head")
    k, slots, units = keras(), config.steps, config.units
    features = int(model.get_layer("frames_cnn").layer.output_shape[-1])
    feature = k.Input((features,), batch_size=1, name="feature")
    states = [k.Input((units,), batch_size=slots, name=name) for name in state_names(config)]
    step, x, new_states, per_layer = _step_layer_class(), feature, [], 2 if config.rnn is RnnType.LSTM else 1
    for i in range(config.layers):
        trained = model.get_layer(f"rnn_{i}")
        layer = step(config.rnn.value, units, name=f"rnn_{i}_step")
        out = layer([x, *states[i * per_layer : (i + 1) * per_layer]])
        layer.set_weights([np.asarray(w) for w in trained.get_weights()])
        new_states += list(out) if per_layer == 2 else [out]
        x = new_states[-per_layer]  # this layer's new h feeds the next
    trained = model.get_layer("classifier")
    classifier = k.layers.Dense(trained.units, activation="softmax", name="classifier")
    probs = classifier(x)
    classifier.set_weights(trained.get_weights())
    outputs = [k.layers.Identity(name=name + STATE_OUTPUT_SUFFIX)(t) for name, t in zip(state_names(config), new_states)]
    outputs.insert(0, probs)
    return k.Model([feature, *states], outputs, name="step_head")


def zero_states(config: ModelConfig) -> list[np.ndarray]:
    return [np.zeros((config.steps, config.units), np.float32) for _ in state_names(config)]


def run_step_head(step_fn, features: np.ndarray, config: ModelConfig) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Push step features ``[N, F]`` through ``step_fn(feature, *states) -> (probs, *states)``.

    A step feature is the encoder's output for one frame (or, ``motion=pair``, one pair of
    consecutive frames). Returns the probabilities of every full window (``[N - S + 1, classes]``
    for S = ``config.steps``, row ``i`` = steps ``i .. i+S-1``) and the step inputs
    ``[feature, *states]`` of every push (for calibration).
    """
    slots, states, out, feeds = config.steps, zero_states(config), [], []
    for n, feature in enumerate(np.asarray(features, np.float32)):
        for s in states:  # the oldest slot starts a new window at this frame
            s[n % slots] = 0.0
        feed = [feature[None], *states]
        feeds.append([a.copy() for a in feed])
        probs, *states = (np.array(a, np.float32) for a in step_fn(*feed))  # own, writable copies
        if n >= slots - 1:
            out.append(probs[(n + 1) % slots])
    return np.asarray(out, np.float32), feeds
