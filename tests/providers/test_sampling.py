"""The embedded sampler chain (issue 21): repetition control by default, a request's own
penalties taking control, and the greedy fast path never bypassing penalties or biases."""

from __future__ import annotations

import pytest

from hubbub.core.types import ResponseFormat, SamplingParams
from hubbub.errors import InvalidRequest
from hubbub.providers.sampling import NO_REPETITION_CONTROL, Repetition

MODEL = "smollm2-135m-instruct"
DEFAULTS = Repetition(repeat_penalty=1.1, dry_multiplier=0.8)


def test_a_request_without_penalties_gets_the_defaults():
    assert Repetition.of(SamplingParams(), DEFAULTS) is DEFAULTS
    # A zero frequency/presence penalty is what many clients send for "unset".
    assert Repetition.of(SamplingParams(frequency_penalty=0, presence_penalty=0), DEFAULTS) is DEFAULTS


def test_a_request_that_sets_a_penalty_takes_control_of_all():
    rep = Repetition.of(SamplingParams(frequency_penalty=2.0), DEFAULTS)
    assert (rep.frequency_penalty, rep.repeat_penalty, rep.dry_multiplier) == (2.0, 1.0, 0.0)
    raw = Repetition.of(SamplingParams(repetition_penalty=1.0), DEFAULTS)
    assert not raw.penalises and raw.dry_multiplier == 0.0


@pytest.fixture
def model(server):
    return server.container.registry.get(MODEL).provider.model


def test_greedy_fast_path_only_when_nothing_shapes_the_distribution(model):
    def fast(params: SamplingParams) -> bool:
        chain = model.sampler(params)
        try:
            return bool(chain._argmax_of)
        finally:
            chain.close()

    assert not fast(SamplingParams(temperature=0))  # the default penalties apply
    assert fast(SamplingParams(temperature=0, repetition_penalty=1.0))  # the raw model: argmax is exact
    assert not fast(SamplingParams(temperature=0, repetition_penalty=1.0, logit_bias={5: -100}))
    assert not fast(SamplingParams(temperature=0, repetition_penalty=1.0, logprobs=True))


def test_grammars_get_no_default_penalties(model):
    assert model.repetition.penalises  # the configured defaults are on
    import llama_cpp as lc

    def shaping(params: SamplingParams) -> int:
        chain = model.sampler(params)
        try:
            return lc.llama_sampler_chain_n(chain._shape)
        finally:
            chain.close()

    assert shaping(SamplingParams(temperature=0)) == 2  # penalties and DRY
    assert shaping(SamplingParams(temperature=0, response_format=ResponseFormat("json_object"))) == 0
    assert shaping(SamplingParams(temperature=0, frequency_penalty=1.0,
                                  response_format=ResponseFormat("json_object"))) == 1  # its own still apply
    assert NO_REPETITION_CONTROL.penalises is False


def test_a_bias_outside_the_vocabulary_is_refused(model):
    with pytest.raises(InvalidRequest) as err:
        model.sampler(SamplingParams(logit_bias={10**8: 1.0}))
    assert err.value.details[0].field == "logit_bias"
