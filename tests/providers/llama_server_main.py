"""``python -m llama_cpp.server``, with llama.cpp's extra buffer types off.

On CPUs with AMX, llama.cpp's AMX matrix multiply crashes the server process (SIGSEGV in
``ggml_backend_amx_mul_mat``) on its first completion; hubbub's embedded model loads with
``use_extra_bufts = false`` for the same reason (docs/architecture.md). The server exposes no
flag for it, so this launcher sets it in llama-cpp-python's default model parameters and then
runs the server module unchanged, with the same command-line arguments.
"""

import os
import runpy

import llama_cpp
import llama_cpp.llama_cpp as low_level

_default_params = low_level.llama_model_default_params


def _params():  # noqa: ANN202
    params = _default_params()
    params.use_extra_bufts = False
    return params


low_level.llama_model_default_params = _params

if os.environ.get("HUBBUB_TEST_LLAMA_POOLING") == "mean":
    # The server has no pooling flag, and SmolLM2's GGUF names none, so its /v1/embeddings would
    # answer one vector per token; mean pooling gives one per input, as hubbub's own (issue 21).
    _init = llama_cpp.Llama.__init__

    def _init_mean(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        kwargs.setdefault("pooling_type", llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        _init(self, *args, **kwargs)

    llama_cpp.Llama.__init__ = _init_mean
llama_cpp.llama_model_default_params = _params
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
