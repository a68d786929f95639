"""The kernels a GPU launches for one decode step or one prefill, and what each reads, writes, computes.

Follows the reference decode paths: mamba_ssm's `Mamba.step` / `Mamba2.step` inside `Block` (fused
residual add + RMSNorm, residual kept in fp32) and `MambaLMHeadModel` (final norm, LM head, then the
sampler outside the captured graph); Hugging Face transformers' `MambaForCausalLM` /
`Mamba2ForCausalLM` with the CUDA kernels, whose norms, splits and cache updates are separate PyTorch
operations. Prefill is the parallel form: GEMMs over every prompt token, `causal_conv1d_fn`, the
selective scan (Mamba-1) or the chunked SSD scan (Mamba-2), the final states written once.

Counts here are per token (one stream in decode, one prompt position in prefill) and per launch
(weights, per-launch constants); bytes follow from the model's precisions. The SSM and conv state
bytes of a decode step come from the policy plan, so `Kernel` only marks which kernel moves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.config.model import ModelSpec
from hwsim.geometry import SCAN_OPS_PER_STATE_ELEMENT, ModelFootprint, quantised_bytes

#: fp32 operations per element: an RMSNorm (square, sum, scale, weight), a gated RMSNorm (+ SiLU gate),
#: a residual add, a SiLU. Op counts of the algorithm, not hardware figures.
RMSNORM_OPS, GATED_RMSNORM_OPS, ADD_OPS, SILU_OPS = 4, 8, 1, 4
#: dequantise one low-bit element (unpack, convert, scale) and quantise one (scale, round, pack, share
#: of the group max): op counts of the usual integer group-scale kernels.
DEQUANT_OPS_PER_ELEMENT, QUANT_OPS_PER_ELEMENT = 3, 5
#: Mamba-2 SSD chunk length in mamba_ssm's `mamba_chunk_scan_combined` (chunk_size=256 in the configs)
SSD_CHUNK_TOKENS = 256


@dataclass(frozen=True)
class Kernel:
    """One launch. Per-token figures scale with the tokens the launch covers; the rest are per launch."""

    name: str
    kind: str                         # gemm | conv | scan | norm | elementwise | gather | sample
    weight_bytes: float = 0.0         # read once per launch at storage precision
    weight_elements: float = 0.0      # low-bit projection weights dequantised (once per GEMM row tile)
    act_in_bytes: float = 0.0         # per token
    act_out_bytes: float = 0.0        # per token
    const_bytes: float = 0.0          # per launch, read and written (e.g. A = -exp(A_log) in fp32)
    matmul_flops: float = 0.0         # per token, tensor cores
    vector_ops: float = 0.0           # per token, fp32 element-wise
    ssm_state: bool = False           # moves the layer's SSM state (bytes from the plan)
    conv_state: bool = False          # moves the layer's conv state
    host_only: bool = False           # launched by the host outside a captured graph (the sampler)


@dataclass(frozen=True)
class KernelPlan:
    """The kernels of one layer (repeated n_layers times) and of the step's head and tail."""

    layer: tuple[Kernel, ...]
    head: tuple[Kernel, ...]          # before the first layer (embedding)
    tail: tuple[Kernel, ...]          # after the last layer (final norm, LM head, sampler)
    n_layers: int

    @property
    def launches_per_step(self) -> int:
        return self.n_layers * len(self.layer) + len(self.head) + len(self.tail)


def _projection_bytes(model: ModelSpec, params: float) -> float:
    return float(quantised_bytes(params, model.weight_bits, model.weight_group_size, model.weight_scale_bits))


def _lowbit(model: ModelSpec, params: float) -> float:
    return float(params) if model.weight_bits < 16 else 0.0


def _gemm(model: ModelSpec, name: str, d_in: int, d_out: int, act: float) -> Kernel:
    params = d_in * d_out
    return Kernel(name, "gemm", weight_bytes=_projection_bytes(model, params),
                  weight_elements=_lowbit(model, params), act_in_bytes=d_in * act, act_out_bytes=d_out * act,
                  matmul_flops=2.0 * params)


def decode_kernels(model: ModelSpec, fp: ModelFootprint, framework: str) -> KernelPlan:
    """Kernels of one decode step. Their weight bytes add up to the footprint's, which tests check."""
    act = model.activation_bits / 8.0
    d_model, d_inner, d_state, d_conv = model.d_model, model.d_inner, model.d_state, model.d_conv
    residual = 4.0  # mamba_ssm and transformers keep the residual stream in fp32 (residual_in_fp32)
    norm = Kernel("add_rmsnorm", "norm", weight_bytes=2.0 * d_model,
                  act_in_bytes=d_model * (act + residual), act_out_bytes=d_model * (act + residual),
                  vector_ops=(RMSNORM_OPS + ADD_OPS) * d_model)
    if model.architecture == "mamba2":
        heads, groups = model.n_heads, model.ngroups
        conv_channels = d_inner + 2 * groups * d_state
        in_out = 2 * d_inner + 2 * groups * d_state + heads
        layer = [
            norm,
            _gemm(model, "in_proj", d_model, in_out, act),
            Kernel("causal_conv1d_update", "conv", weight_bytes=2.0 * conv_channels * (d_conv + 1),
                   act_in_bytes=conv_channels * act, act_out_bytes=conv_channels * act,
                   vector_ops=(2 * d_conv + SILU_OPS) * conv_channels, conv_state=True),
            Kernel("selective_state_update", "scan", weight_bytes=2.0 * 3 * heads,  # A_log, D, dt_bias
                   act_in_bytes=(2 * d_inner + heads + 2 * groups * d_state) * act,  # x, z, dt, B, C
                   act_out_bytes=d_inner * act,
                   vector_ops=SCAN_OPS_PER_STATE_ELEMENT["mamba2"] * d_inner * d_state, ssm_state=True),
            Kernel("rmsnorm_gated", "norm", weight_bytes=2.0 * d_inner, act_in_bytes=2 * d_inner * act,
                   act_out_bytes=d_inner * act, vector_ops=GATED_RMSNORM_OPS * d_inner),
            _gemm(model, "out_proj", d_inner, d_model, act),
        ]
    else:
        rank = model.resolved_dt_rank
        layer = [
            norm,
            _gemm(model, "in_proj", d_model, 2 * d_inner, act),
            Kernel("causal_conv1d_update", "conv", weight_bytes=2.0 * d_inner * (d_conv + 1),
                   act_in_bytes=d_inner * act, act_out_bytes=d_inner * act,
                   vector_ops=(2 * d_conv + SILU_OPS) * d_inner, conv_state=True),
            _gemm(model, "x_proj", d_inner, rank + 2 * d_state, act),
            _gemm(model, "dt_proj", rank, d_inner, act),
            # A = -exp(A_log.float()) every step: reads the fp32 A_log, writes A for the scan kernel
            Kernel("exp_A_log", "elementwise", weight_bytes=4.0 * d_inner * d_state,
                   const_bytes=4.0 * d_inner * d_state),
            Kernel("neg_A", "elementwise", const_bytes=2 * 4.0 * d_inner * d_state),
            Kernel("selective_state_update", "scan", weight_bytes=2.0 * 2 * d_inner,  # D, dt_bias
                   const_bytes=4.0 * d_inner * d_state,                                # A, read back
                   act_in_bytes=(3 * d_inner + 2 * d_state) * act, act_out_bytes=d_inner * act,
                   vector_ops=SCAN_OPS_PER_STATE_ELEMENT["mamba1"] * d_inner * d_state, ssm_state=True),
            _gemm(model, "out_proj", d_inner, d_model, act),
        ]
    layer = _balance_weights(layer, fp)
    if framework == "transformers":
        layer = _unfused_transformers(layer, model)
    vocab = model.vocab_size
    head = (Kernel("embedding", "gather", act_in_bytes=d_model * act, act_out_bytes=d_model * act),)
    lm = _gemm(model, "lm_head", d_model, vocab, act)
    lm = Kernel("lm_head", "gemm", weight_bytes=fp.lm_head_bytes, weight_elements=lm.weight_elements,
                act_in_bytes=lm.act_in_bytes, act_out_bytes=lm.act_out_bytes, matmul_flops=lm.matmul_flops)
    tail = (norm, lm,
            Kernel("sample_argmax", "sample", act_in_bytes=vocab * act, act_out_bytes=8.0,
                   vector_ops=float(vocab), host_only=True),
            Kernel("append_token", "elementwise", act_in_bytes=8.0, act_out_bytes=8.0, host_only=True))
    return KernelPlan(layer=tuple(layer), head=head, tail=tail, n_layers=model.n_layers)


def _balance_weights(layer: list[Kernel], fp: ModelFootprint) -> list[Kernel]:
    """Put any weight bytes the kernels did not name (norm weights, biases) on the first kernel, so a
    step reads exactly the footprint's weights: both execution kinds share one byte accounting."""
    named = sum(k.weight_bytes for k in layer)
    rest = fp.weight_bytes_per_layer - named
    first = layer[0]
    return [Kernel(**{**first.__dict__, "weight_bytes": first.weight_bytes + rest}), *layer[1:]]


def _unfused_transformers(layer: list[Kernel], model: ModelSpec) -> list[Kernel]:
    """transformers runs the norms and residual add as separate PyTorch element-wise operations and
    copies splits and cache slices; each is a kernel that reads and writes its activations."""
    act = model.activation_bits / 8.0
    out: list[Kernel] = []
    for kernel in layer:
        if kernel.kind != "norm":
            out.append(kernel)
            continue
        width = kernel.act_out_bytes / (act + 4.0) if kernel.name == "add_rmsnorm" else kernel.act_out_bytes / act
        ops = 6 if kernel.name == "add_rmsnorm" else 9   # add, to fp32, pow, mean, rsqrt, mul (x weight)
        for i in range(ops):
            out.append(Kernel(f"{kernel.name}.{i}", "elementwise",
                              weight_bytes=kernel.weight_bytes if i == ops - 1 else 0.0,
                              act_in_bytes=4.0 * width, act_out_bytes=4.0 * width, vector_ops=float(width)))
    return out


def prefill_kernels(model: ModelSpec, fp: ModelFootprint) -> KernelPlan:
    """Kernels of the parallel form over the prompt (mamba_ssm's forward with `inference_params`):
    per token figures apply to every prompt token; the LM head runs on the last token of each stream."""
    act = model.activation_bits / 8.0
    d_model, d_inner, d_state, d_conv = model.d_model, model.d_inner, model.d_state, model.d_conv
    decode = decode_kernels(model, fp, "mamba_ssm")
    by_name = {k.name: k for k in decode.layer}
    layer = [by_name["add_rmsnorm"], by_name["in_proj"]]
    if model.architecture == "mamba2":
        heads, groups, headdim = model.n_heads, model.ngroups, model.headdim
        conv_channels = d_inner + 2 * groups * d_state
        q = SSD_CHUNK_TOKENS
        # SSD per token: C.B^T within the chunk (per group), (L o CB^T) X (per head), the chunk state
        # B^T X and the output from the passed state C h (per head); the causal mask halves the
        # intra-chunk products.
        ssd_flops = groups * q * d_state + heads * (q * headdim + 4 * d_state * headdim)
        layer += [
            Kernel("causal_conv1d_fn", "conv", weight_bytes=by_name["causal_conv1d_update"].weight_bytes,
                   act_in_bytes=conv_channels * act, act_out_bytes=conv_channels * act,
                   vector_ops=(2 * d_conv + SILU_OPS) * conv_channels),
            Kernel("chunk_scan", "scan", weight_bytes=by_name["selective_state_update"].weight_bytes,
                   act_in_bytes=(d_inner + heads + 2 * groups * d_state) * act, act_out_bytes=d_inner * act,
                   matmul_flops=2.0 * ssd_flops, vector_ops=4.0 * heads * q / 2, ssm_state=True),
            by_name["rmsnorm_gated"], by_name["out_proj"],
        ]
    else:
        layer += [
            Kernel("causal_conv1d_fn", "conv", weight_bytes=by_name["causal_conv1d_update"].weight_bytes,
                   act_in_bytes=d_inner * act, act_out_bytes=d_inner * act,
                   vector_ops=(2 * d_conv + SILU_OPS) * d_inner),
            by_name["x_proj"], by_name["dt_proj"],
            Kernel("selective_scan", "scan",
                   weight_bytes=by_name["selective_state_update"].weight_bytes
                   + by_name["exp_A_log"].weight_bytes,
                   act_in_bytes=(3 * d_inner + 2 * d_state) * act, act_out_bytes=d_inner * act,
                   vector_ops=SCAN_OPS_PER_STATE_ELEMENT["mamba1"] * d_inner * d_state, ssm_state=True),
            by_name["out_proj"],
        ]
    layer = _balance_weights(layer, fp)
    return KernelPlan(layer=tuple(layer), head=decode.head, tail=decode.tail[:2], n_layers=model.n_layers)
