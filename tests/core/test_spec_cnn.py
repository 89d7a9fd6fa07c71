"""The cnn model type: bounded convolutions, refused with a 422 naming `model.conv[i]` where the
image would shrink away (computed without torch), and mlp specs dumped exactly as before."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import from_spec_errors
from core.presets import BOOK_CHAIN, PRESETS, build_spec
from core.spec import ExperimentSpec, group_key

BOOK_CONV = [
    {"channels": 10, "kernel": 5, "stride": 2, "normalization": "batch_norm"},
    {"channels": 10, "kernel": 3, "stride": 2, "normalization": "batch_norm"},
]


def cnn(*conv: dict[str, Any], **model: Any) -> dict[str, Any]:
    return {"model": {"type": "cnn", "conv": list(conv), "hidden": [], **model}}


def refused(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as info:
        ExperimentSpec.model_validate(data)
    return from_spec_errors(info.value)


# Today's fingerprint, group key and canonical JSON of the five presets: the cnn fields must
# not change any of them (stored runs are reused and grouped by these).
BEFORE = {
    "seed-baseline": ("2078db74c8785e0c", "ed10323ea80a0e0b"),
    "seed-bce": ("598917481d6740a3", "9a16d6aa64522db0"),
    "seed-leakyrelu": ("f92374344cd48473", "67551de6eb9c9daa"),
    "seed-adam": ("803af161063e2a05", "ea55c17f5258082b"),
    "seed-layernorm": ("167e91ef937e1516", "1665c85427c0a3a8"),
}
BASELINE_JSON = (
    '{"batch_size":1,"dataset":"mnist","device":"auto","epochs":3,"log_every":10,"loss":"mse",'
    '"lr":0.01,"model":{"activation":"sigmoid","hidden":[200],"negative_slope":0.02,'
    '"normalization":"none","output":"sigmoid"},"momentum":0.0,"optimizer":"sgd","seed":0,'
    '"test_limit":null,"train_limit":null,"weight_decay":0.0}'
)


@pytest.mark.parametrize("name", BOOK_CHAIN)
def test_mlp_specs_keep_their_identity(name: str) -> None:
    spec = build_spec(name)
    assert (spec.fingerprint(), group_key(spec)) == BEFORE[name]
    assert "conv" not in spec.canonical_json() and '"type"' not in spec.canonical_json()
    # Saying the default out loud is the same spec.
    explicit = build_spec(name, {"model.type": "mlp", "model.conv": []})
    assert explicit.canonical_json() == spec.canonical_json()


def test_the_default_spec_dumps_as_before() -> None:
    assert ExperimentSpec().canonical_json() == BASELINE_JSON


def test_cnn_mnist_is_the_books_network() -> None:
    assert "cnn-mnist" in PRESETS and "cnn-mnist" not in BOOK_CHAIN
    spec = build_spec("cnn-mnist")
    convs = spec.conv_layers()
    assert [(c.in_channels, c.out_channels, c.kernel, c.stride) for c in convs] == [
        (1, 10, 5, 2),
        (10, 10, 3, 2),
    ]
    assert [(c.conv_side, c.out_side) for c in convs] == [(12, 12), (5, 5)]
    (linear,) = spec.layers()
    assert (linear.fan_in, linear.fan_out, linear.activation) == (250, 10, "sigmoid")
    assert (spec.loss, spec.optimizer, spec.lr, spec.batch_size, spec.epochs) == (
        "bce",
        "adam",
        0.001,
        1,
        3,
    )
    assert '"type":"cnn"' in spec.canonical_json()
    # Its seeds keep apart: a cnn is never fused.
    assert group_key(spec) != group_key(build_spec("cnn-mnist", {"seed": 1}))
    assert ExperimentSpec.model_validate_json(spec.canonical_json()) == spec


def test_pooling_and_padding_shapes() -> None:
    spec = ExperimentSpec.model_validate(
        cnn(
            {"channels": 4, "kernel": 3, "padding": 1, "pool": "max2"},
            {"channels": 6, "kernel": 4, "stride": 3, "pool": "max2"},
            hidden=[16],
        )
    )
    assert [(c.conv_side, c.out_side) for c in spec.conv_layers()] == [(28, 14), (4, 2)]
    assert spec.layers()[0].fan_in == 6 * 2 * 2


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        # 28 -> 12 -> 5 -> 2 -> a 7x7 kernel on 2x2: nothing left
        (
            cnn(
                *BOOK_CONV, {"channels": 4, "kernel": 3, "stride": 2}, {"channels": 4, "kernel": 7}
            ),
            "model.conv[3]",
            "smaller than its kernel",
        ),
        (
            cnn(
                {"channels": 4, "kernel": 7, "stride": 3},
                {"channels": 4, "kernel": 7, "stride": 3},
                {"channels": 4, "kernel": 1, "pool": "max2"},
            ),
            "model.conv[2]",
            "below 1x1",
        ),
        (
            cnn(
                {"channels": 4, "kernel": 7, "stride": 3},
                {"channels": 4, "kernel": 7},
                {"channels": 4, "kernel": 2, "normalization": "batch_norm"},
            ),
            "model.conv[2]",
            "single value per channel",
        ),
        (cnn({"channels": 65, "kernel": 3}), "model.conv[0].channels", "less than or equal to 64"),
        (cnn({"channels": 0, "kernel": 3}), "model.conv[0].channels", "greater than or equal"),
        (cnn({"channels": 4, "kernel": 8}), "model.conv[0].kernel", "less than or equal to 7"),
        (cnn({"channels": 4, "kernel": 3, "stride": 4}), "model.conv[0].stride", "or equal to 3"),
        (cnn({"channels": 4, "kernel": 3, "pool": "avg"}), "model.conv[0].pool", "'max2'"),
        (
            cnn({"channels": 4, "kernel": 3, "normalization": "layer_norm"}),
            "model.conv[0].normalization",
            "'batch_norm'",
        ),
        (
            cnn({"channels": 4, "kernel": 3, "dilation": 2}),
            "model.conv[0].dilation",
            "unknown field",
        ),
        (cnn(*[{"channels": 2, "kernel": 1}] * 5), "model.conv", "at most 4 items"),
        (cnn(), "model.conv", "at least 1 convolution"),
        ({"model": {"conv": BOOK_CONV}}, "model.conv", "applies to model.type=cnn"),
        ({"model": {"type": "rnn"}}, "model.type", "'cnn'"),
    ],
)
def test_bad_convolutions_are_422s_naming_the_field(
    data: dict[str, Any], field: str, words: str
) -> None:
    found = refused(data)
    assert [e["field"] for e in found] == [field]
    assert words in found[0]["reason"]


def test_a_book_cnn_with_a_hidden_layer_and_batches_is_accepted() -> None:
    spec = ExperimentSpec.model_validate(cnn(*BOOK_CONV, hidden=[64]) | {"batch_size": 8})
    assert [layer.fan_in for layer in spec.layers()] == [250, 64]
