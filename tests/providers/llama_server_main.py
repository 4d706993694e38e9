"""``python -m llama_cpp.server``, with llama.cpp's extra buffer types off.

On CPUs with AMX, llama.cpp's AMX matrix multiply crashes the server process (SIGSEGV in
``ggml_backend_amx_mul_mat``) on its first completion; hubbub's embedded model loads with
``use_extra_bufts = false`` for the same reason (docs/architecture.md). The server exposes no
flag for it, so this launcher sets it in llama-cpp-python's default model parameters and then
runs the server module unchanged, with the same command-line arguments.
"""

import runpy

import llama_cpp
import llama_cpp.llama_cpp as low_level

_default_params = low_level.llama_model_default_params


def _params():  # noqa: ANN202
    params = _default_params()
    params.use_extra_bufts = False
    return params


low_level.llama_model_default_params = _params
llama_cpp.llama_model_default_params = _params
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
